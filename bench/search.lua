-- wrk script: POST a different query image on each request, print a JSON summary at the end.
-- Usage: wrk -t1 -c8 -d30s -s bench/search.lua 'http://127.0.0.1:8000/search?k_features=16' -- a.png b.png

local boundary = "tricl-bench-boundary"
local bodies = {}
local next_body = 0
local threads = {}
shed = 0 -- 503 answers (load shed), per thread
shed_without_retry_after = 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for _, path in ipairs(args) do
    local file = assert(io.open(path, "rb"))
    local data = file:read("*a")
    file:close()
    bodies[#bodies + 1] = "--" .. boundary .. "\r\n"
      .. "Content-Disposition: form-data; name=\"file\"; filename=\"query.png\"\r\n"
      .. "Content-Type: image/png\r\n\r\n" .. data .. "\r\n--" .. boundary .. "--\r\n"
  end
  wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
end

function request()
  next_body = next_body % #bodies + 1
  return wrk.format("POST", nil, nil, bodies[next_body])
end

function response(status, headers, body)
  if status == 503 then
    shed = shed + 1
    if headers["retry-after"] == nil and headers["Retry-After"] == nil then
      shed_without_retry_after = shed_without_retry_after + 1
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local shed_total, without_retry = 0, 0
  for _, thread in ipairs(threads) do
    shed_total = shed_total + thread:get("shed")
    without_retry = without_retry + thread:get("shed_without_retry_after")
  end
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "socket_errors": %d, "status_errors": %d, '
      .. '"timeouts": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, "shed": %d, '
      .. '"shed_without_retry_after": %d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max, shed_total, without_retry))
end
