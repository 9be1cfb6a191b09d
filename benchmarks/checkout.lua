-- wrk script of bench_checkout: every request is one buyer's checkout, posted once.
--
--   wrk -s benchmarks/checkout.lua URL -- BUYERS_FILE THREADS
--
-- BUYERS_FILE holds tab-separated lines: bearer token, budget line id, user id. Thread i of
-- THREADS takes every THREADS-th buyer from line i. Past its last buyer a thread sends
-- GET /health and reports itself exhausted. done() prints one line:
--   CHECKOUT created failed exhausted duration_us p50_us p99_us first-failure

local threads = {}
local started = 0

function setup(thread)
  thread:set("index", started)
  started = started + 1
  table.insert(threads, thread)
end

function init(args)
  local path, nthreads = args[1], tonumber(args[2])
  prepared = {}
  local i = 0
  for line in io.lines(path) do
    if i % nthreads == index then
      local token, budget_line, user = line:match("([^\t]+)\t([^\t]+)\t([^\t]+)")
      local body = '{"budget_line_id":' .. budget_line ..
        ',"acknowledge":["price_above_median","splitting"]}'
      prepared[#prepared + 1] = wrk.format("POST", "/api/v1/checkout", {
        ["Authorization"] = "Bearer " .. token,
        ["Content-Type"] = "application/json",
        ["Accept-Encoding"] = "identity",
        ["Idempotency-Key"] = "checkout-" .. user,
      }, body)
    end
    i = i + 1
  end
  position = 0
  created = 0
  failed = 0
  exhausted = 0
  failure = ""
end

function request()
  position = position + 1
  local r = prepared[position]
  if r == nil then
    exhausted = 1
    return wrk.format("GET", "/health")
  end
  return r
end

function response(status, headers, body)
  if status == 201 then
    created = created + 1
  elseif not (exhausted == 1 and status == 200) then
    failed = failed + 1
    if failure == "" then failure = status .. " " .. string.sub(body or "", 1, 300) end
  end
end

function done(summary, latency, requests)
  local c, f, e, why = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    f = f + t:get("failed")
    e = e + t:get("exhausted")
    if why == "" then why = t:get("failure") end
  end
  why = string.gsub(why, "[\r\n]", " ")
  io.write(string.format("CHECKOUT %d %d %d %d %d %d %s\n", c, f, e, summary.duration,
    latency:percentile(50), latency:percentile(99), why))
end
