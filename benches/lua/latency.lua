-- Paced POST /contact with a unique visitor address per request. Every 303 is recorded with the
-- message id from its Location (`/contact/sent?r=v1.<id>.…`) and the CLOCK_MONOTONIC time it
-- arrived, into BENCH_SENT_DIR/sent-<thread>.txt; benches/sink.py records each mail's arrival on the
-- same clock. BENCH_DELAY_MS: pause per connection between an answer and the next request.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")
local now_ns = common.now_ns

setup = common.setup
local out, pause, n = nil, 0, 0

function init(args)
  out = io.open(os.getenv("BENCH_SENT_DIR") .. "/sent-" .. id .. ".txt", "w")
  out:setvbuf("line")
  pause = tonumber(os.getenv("BENCH_DELAY_MS"))
end

function request()
  n = n + 1
  local body = "name=Ada&email=lat-" .. id .. "-" .. n .. "%40example.org&subject=Latency&message=Hello+there"
  return wrk.format("POST", "/contact", { ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end

function delay()
  return pause
end

function response(status, headers, body)
  local location = headers["Location"] or headers["location"]
  if status == 303 and location then
    local mid = location:match("r=v1%.(%d+)%.")
    if mid then out:write(mid, " ", string.format("%.0f", now_ns()), "\n") end
  end
end

done = common.done
