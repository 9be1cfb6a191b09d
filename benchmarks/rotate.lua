-- wrk script: send the requests of a file in turn, and report the figures as one JSON line.
--
--   wrk -s benchmarks/rotate.lua URL -- REQUESTS_FILE
--
-- REQUESTS_FILE holds tab-separated lines (no tab or newline inside a field):
--   H <tab> name <tab> value              a header sent with every request
--   R <tab> method <tab> path [<tab> body] one request; the body is sent as it is
-- Requests are built once, in init(); each connection's thread takes them in turn, starting at
-- a different place per thread. done() prints "WRKJSON {...}" with latencies in microseconds.

local requests = {}
local count = 0
local position = 0
local threads_started = 0

local function split(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do
    fields[#fields + 1] = field
  end
  return fields
end

function setup(thread)
  thread:set("wrk_thread_id", threads_started)
  threads_started = threads_started + 1
end

function init(args)
  local headers = {}
  local pending = {}
  for line in io.lines(args[1]) do
    local fields = split(line)
    if fields[1] == "H" then
      headers[fields[2]] = fields[3]
    elseif fields[1] == "R" then
      pending[#pending + 1] = fields
    end
  end
  for _, fields in ipairs(pending) do
    local body = fields[4]
    if body == "" then body = nil end
    count = count + 1
    requests[count] = wrk.format(fields[2], fields[3], headers, body)
  end
  if count == 0 then
    error("no requests in " .. args[1])
  end
  position = ((tonumber(wrk_thread_id) or 0) * 7919) % count
end

function request()
  position = position % count + 1
  return requests[position]
end

function done(summary, latency, requests_stats)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
