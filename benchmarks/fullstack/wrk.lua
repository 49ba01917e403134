-- One request, repeated: method, form body and cookies from the environment the runner sets.
-- Every response whose status is not FS_EXPECT is counted, and the total is printed at the
-- end: a page that answers 303 (session lost) or 403 (CSRF refused) is no result, and wrk
-- counts 3xx answers as successes by itself.
wrk.method = os.getenv("FS_METHOD") or "GET"
local body = os.getenv("FS_BODY") or ""
if body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
wrk.headers["Cookie"] = os.getenv("FS_COOKIE") or ""
local expected = tonumber(os.getenv("FS_EXPECT") or "200")

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  unexpected = 0
  last_status = 0
end

function response(status, headers, body)
  if status ~= expected then
    unexpected = unexpected + 1
    last_status = status
  end
end

function done(summary, latency, requests)
  local count, status = 0, 0
  for _, thread in ipairs(threads) do
    count = count + thread:get("unexpected")
    if thread:get("last_status") ~= 0 then
      status = thread:get("last_status")
    end
  end
  io.write(string.format("unexpected: %d status %d\n", count, status))
end
