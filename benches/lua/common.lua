-- Shared by the wrk scripts: one JSON line with the figures benches/report.py reads, and the
-- bookkeeping of runs that end after a number of answers instead of after a duration.
local M = {}

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local CLOCK_MONOTONIC = 1

-- CLOCK_MONOTONIC in nanoseconds: the clock benches/sink.py stamps arrivals with.
function M.now_ns()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1e9 + tonumber(ts.tv_nsec)
end

-- Gives each wrk thread a number 1..n (wrk runs setup() once per thread, in the main Lua state).
local threads = {}
function M.setup(thread)
  threads[#threads + 1] = thread
  thread:set("id", #threads)
end

-- For a run that ends after `limit` answers per thread: call on every answer. Records the first
-- and last times and, when the thread is through, drops a file in BENCH_DONE; run.sh then stops
-- wrk with SIGINT (wrk's own duration would include its idle wait until -d).
function M.counted(limit)
  counted_n = (counted_n or 0) + 1
  if counted_n == 1 then counted_first = M.now_ns() end
  if counted_n == limit then
    counted_last = M.now_ns()
    io.open(os.getenv("BENCH_DONE") .. "/" .. id, "w"):close()
  end
end

function M.done(summary, latency, requests)
  local e = summary.errors
  local n, duration_us = summary.requests, summary.duration
  local first, last, counted = nil, nil, 0
  for _, t in ipairs(threads) do
    local f, l, c = t:get("counted_first"), t:get("counted_last"), t:get("counted_n")
    if f and l then
      first = math.min(first or f, f)
      last = math.max(last or l, l)
      counted = counted + math.min(c, t:get("counted_limit") or c)
    end
  end
  if first then n, duration_us = counted, (last - first) / 1000 end
  io.write(string.format(
    'JSON:{"requests":%d,"duration_us":%d,"rps":%.1f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    n, duration_us, n / duration_us * 1e6,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end

return M
