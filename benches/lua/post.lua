-- POST /contact as a browser posts the form, each from its own visitor address (as real traffic:
-- formgate serialises the mails to one address, so one address for all would measure that lock).
-- BENCH_MAX=N: each thread is through after N answers (seeding).
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")
setup = common.setup

local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
local before = "name=Ada+Lovelace&email=ada-"
local after = "%40example.org&subject=A+question+about+pricing&message="
  .. string.rep("Hello%2C+I+would+like+to+know+more+about+your+product.+", 5)
local n = 0

function request()
  n = n + 1
  return wrk.format("POST", "/contact", headers, before .. id .. "-" .. n .. after)
end

local max = tonumber(os.getenv("BENCH_MAX") or "")
if max then
  function response(status, headers, body)
    common.counted(max)
  end
end

done = common.done
