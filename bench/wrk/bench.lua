-- The one wrk script of bench/run, configured by the environment:
--   BENCH_METHOD, BENCH_PATH          the request line
--   BENCH_BODY_FILE                   a fixed body (cache hit, batch); or
--   BENCH_UNIQUE_PREFIX, BENCH_VALUE  a new id on every request (a cache
--                                     miss), {"id":PREFIX-THREAD-N,"value":VALUE,...}
-- done() prints one line `BENCH_JSON {...}` with wrk's own counts and
-- latency percentiles (microseconds), which bench/run parses.

local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH") or "/"
local body_file = os.getenv("BENCH_BODY_FILE")
local prefix = os.getenv("BENCH_UNIQUE_PREFIX")
local value = os.getenv("BENCH_VALUE") or "150"
local headers = { ["content-type"] = "application/json" }

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  wrk.body = f:read("*a")
  f:close()
end
wrk.method = method
wrk.path = path
if method ~= "GET" then
  wrk.headers["content-type"] = "application/json"
end

local counter = 0

if prefix and prefix ~= "" then
  -- A function request() costs wrk some speed, so only the miss scenarios
  -- define it; the fixed ones use wrk's pre-built request.
  request = function()
    counter = counter + 1
    local body = string.format('{"id":"%s-%s-%d","value":%s,"timestamp":1700000000}',
      prefix, tostring(tid), counter, value)
    return wrk.format(method, path, headers, body)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
