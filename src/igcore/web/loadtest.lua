-- The workload of `igcore loadtest`, run by wrk (LuaJIT) with one connection per thread.
--
-- wrk's hooks do not say which connection a response belongs to; with one connection per thread (each
-- thread has a Lua state of its own) request() and response() alternate, so the script times every
-- request itself. At a fixed rate each connection has intended send times a fixed interval apart, and
-- a request sent late counts its latency from when it should have been sent (the correction for
-- coordinated omission); as fast as possible, the intended time is the actual send time.
--
-- Arguments (after wrk's `--`): scenario, requests/s per connection (0: as fast as possible), seed,
-- the data file (a Lua table of tokens, status ids and account ids), the results file.

local ffi = require("ffi")
ffi.cdef([[
  typedef struct { long tv_sec; long tv_nsec; } igcore_timespec;
  int clock_gettime(int clock, igcore_timespec *now);
]])
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("igcore_timespec")

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) * 1000000 + tonumber(timespec.tv_nsec) / 1000
end

-- In the main Lua state: every thread, for done() to collect their tables.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_number", #threads)
end

-- In each thread's Lua state.
local data, scenario, interval_us, next_intended
local pending  -- the request in flight: {endpoint, start_us, token}
local next_page  -- a home timeline's next page to read: {path, token}
-- What done() reads through thread:get, which copies flat tables only (a nested one crashes wrk 4.1):
-- the n-th response's endpoint and latency, and "<endpoint> <status code>" -> responses.
endpoints = {}
latencies = {}
statuses = {}

-- A home timeline response leads, this often, to reading its next page on the same connection.
local FOLLOW_NEXT = 0.4

-- The mix: cumulative shares of the endpoints, in percent.
local MIX = {
  { 70, "home" },
  { 78, "favourite" },
  { 83, "followers" },
  { 88, "suggestions" },
  { 93, "familiar_followers" },
  { 98, "status" },
  { 100, "post" },
}

function init(args)
  scenario = args[1]
  local rate = tonumber(args[2])
  local seed = tonumber(args[3])
  data = dofile(args[4])
  results_path = args[5]
  math.randomseed(seed * 1000 + thread_number)
  if rate > 0 then
    interval_us = 1000000 / rate
    next_intended = now_us() + math.random() * interval_us  -- spread the connections' first sends
  end
end

local function pick(list)
  return list[math.random(#list)]
end

local function get(endpoint, path, token)
  return endpoint, wrk.format("GET", path, { ["Authorization"] = "Bearer " .. token }), token
end

local function post(endpoint, path, token, body)
  local headers = { ["Authorization"] = "Bearer " .. token }
  if body then
    headers["Content-Type"] = "application/json"
  end
  return endpoint, wrk.format("POST", path, headers, body), token
end

local posted = 0

local builders = {
  home = function()
    if next_page then
      local page = next_page
      next_page = nil
      return get("home", page.path, page.token)
    end
    return get("home", "/api/v1/timelines/home?limit=20", pick(data.tokens))
  end,
  favourite = function()
    return post("favourite", "/api/v1/statuses/" .. pick(data.statuses) .. "/favourite", pick(data.tokens))
  end,
  followers = function()
    return get("followers", "/api/v1/accounts/" .. pick(data.accounts) .. "/followers?limit=40", pick(data.tokens))
  end,
  suggestions = function()
    return get("suggestions", "/api/v2/suggestions?limit=40", pick(data.tokens))
  end,
  familiar_followers = function()
    local path = "/api/v1/accounts/familiar_followers?id%5B%5D=" .. pick(data.accounts)
      .. "&id%5B%5D=" .. pick(data.accounts)
    return get("familiar_followers", path, pick(data.tokens))
  end,
  status = function()
    return get("status", "/api/v1/statuses/" .. pick(data.statuses), pick(data.tokens))
  end,
  post = function()
    posted = posted + 1
    -- A tenth of the posts are by accounts above the fan-out limit.
    local token = pick(math.random() < 0.1 and data.celebrity_tokens or data.tokens)
    local body = string.format('{"status": "load test post %d of connection %d"}', posted, thread_number)
    return post("post", "/api/v1/statuses", token, body)
  end,
}

local function next_endpoint()
  if scenario ~= "mix" then
    return scenario
  end
  local roll = math.random() * 100
  for _, share in ipairs(MIX) do
    if roll < share[1] then
      return share[2]
    end
  end
  return "home"
end

function delay()
  if not interval_us then
    return 0
  end
  return math.max(0, math.floor((next_intended - now_us()) / 1000))
end

function request()
  local endpoint, text, token = builders[next_endpoint()]()
  local start = now_us()
  if interval_us then
    start = math.min(start, next_intended)
    next_intended = next_intended + interval_us
  end
  pending = { endpoint, start, token }
  return text
end

local function next_link(headers)
  local link = headers["Link"] or headers["link"]
  return link and link:match('<https?://[^/>]+(/[^>]*)>;%s*rel="next"')
end

function response(status, headers, body)
  if not pending then
    return
  end
  local endpoint, start, token = pending[1], pending[2], pending[3]
  pending = nil
  local n = #latencies + 1
  latencies[n] = now_us() - start
  endpoints[n] = endpoint
  local key = endpoint .. " " .. status
  statuses[key] = (statuses[key] or 0) + 1
  if endpoint == "home" and status == 200 and math.random() < FOLLOW_NEXT then
    local path = next_link(headers)
    if path then
      next_page = { path = path, token = token }
    end
  end
end

function done(summary, latency, requests)
  local out = assert(io.open(threads[1]:get("results_path"), "w"))
  local errors = summary.errors
  out:write(string.format("D %d\n", summary.duration))
  out:write(string.format("R %d\n", summary.requests))
  out:write(string.format("E connect %d\nE read %d\nE write %d\nE timeout %d\n",
    errors.connect, errors.read, errors.write, errors.timeout))
  for _, thread in ipairs(threads) do
    local names = thread:get("endpoints")
    for n, microseconds in ipairs(thread:get("latencies")) do
      out:write(string.format("L %s %d\n", names[n], microseconds))
    end
    for key, count in pairs(thread:get("statuses")) do
      out:write(string.format("S %s %d\n", key, count))
    end
  end
  out:close()
end
