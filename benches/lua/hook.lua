-- POST /hook as formgate delivers a webhook: the same JSON body (BENCH_HOOK_BODY, a file) and the
-- Standard Webhooks headers, over keep-alive connections. The reference of the webhook figure.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")
setup = common.setup

local f = assert(io.open(os.getenv("BENCH_HOOK_BODY"), "rb"))
local body = f:read("*a")
f:close()
local headers = {
  ["Content-Type"] = "application/json",
  ["webhook-id"] = "msg_0123456789abcdef0123456789abcdef",
  ["webhook-timestamp"] = "1796194047",
  ["webhook-signature"] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
}

function request()
  return wrk.format("POST", "/hook", headers, body)
end

done = common.done
