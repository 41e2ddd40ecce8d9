-- POST /verify/{token} once for every line of BENCH_TOKENS (paths such as /verify/v1.…), as the
-- "Confirm my message" button does. Threads take disjoint slices; the figures cover each slice's
-- answers, from the first request to the slice's last answer.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")
setup = common.setup

local paths, sent = {}, 0

function init(args)
  local threads = tonumber(os.getenv("BENCH_THREADS"))
  local i = 0
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    if i % threads == id - 1 then paths[#paths + 1] = line end
    i = i + 1
  end
  counted_limit = #paths
end

function request()
  sent = sent + 1
  -- Connections still open after the slice is used up repeat its last link (an "already confirmed"
  -- page) until run.sh stops wrk; those answers are not counted.
  local path = paths[math.min(sent, #paths)]
  return wrk.format("POST", path, { ["Content-Type"] = "application/x-www-form-urlencoded" }, "")
end

function response(status, headers, body)
  common.counted(#paths)
end

done = common.done
