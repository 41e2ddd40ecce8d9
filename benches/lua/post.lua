-- POST /contact as a browser posts the form: the same precomputed request every time (no Lua per
-- request, so wrk itself stays cheap). BENCH_MAX=N: each thread is through after N answers (seeding).
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")
setup = common.setup

wrk.method = "POST"
wrk.path = "/contact"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "name=Ada+Lovelace&email=ada%40example.org&subject=A+question+about+pricing&message="
  .. string.rep("Hello%2C+I+would+like+to+know+more+about+your+product.+", 5)

local max = tonumber(os.getenv("BENCH_MAX") or "")
if max then
  function response(status, headers, body)
    common.counted(max)
  end
end

done = common.done
