-- POST /f/quote: a declared form with eight fields (text, email, tel, select, checkboxes, number,
-- textarea, checkbox), each checked by its type; each post from its own visitor address.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")
setup = common.setup

local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
local before = "name=Ada+Lovelace&email=ada-"
local after = "%40example.org&phone=%2B44+20+7946+0000&budget=5-20k&topics=Web&topics=Hosting"
  .. "&seats=12&consent=on&message="
  .. string.rep("Hello%2C+I+would+like+to+know+more+about+your+product.+", 5)
local n = 0

function request()
  n = n + 1
  return wrk.format("POST", "/f/quote", headers, before .. id .. "-" .. n .. after)
end

done = common.done
