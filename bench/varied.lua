-- wrk script: traffic that looks like real clients. Every request differs from the last in
-- its path, query, User-Agent, X-Request-Id and Cookie, so no cache keyed on exact bytes
-- can answer it from memory.
--
--   wrk -s bench/varied.lua http://127.0.0.1:8080 -- /prefix/
--
-- The optional argument is the path prefix (default "/"; bench/http.py uses "/big/" for
-- the 64 KiB scenario).

local prefix = "/"
local counter = 0
local agents = {
  "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
  "curl/8.8.0",
  "python-requests/2.32.3",
  "okhttp/4.12.0",
  "Go-http-client/1.1",
}
local sections = { "item", "user", "api/v1/orders", "static/img", "search", "cart" }

local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end

function init(args)
  if args[1] then
    prefix = args[1]
  end
  math.randomseed(os.time() * 1000 + (id or 0))
end

function request()
  counter = counter + 1
  local n = math.random(1, 99999999)
  local path = string.format(
    "%s%s/%d?page=%d&q=%x&t=%d", prefix, sections[counter % #sections + 1], n,
    counter % 97, n * 7919, counter
  )
  local headers = {
    ["User-Agent"] = agents[counter % #agents + 1],
    ["Accept"] = "*/*",
    ["X-Request-Id"] = string.format("%08x-%04x-%d-%d", n, counter % 65536, id or 0, counter),
    ["Cookie"] = string.format("session=%x%x; theme=%d; seen=%d", n, counter, counter % 3, n % 1000),
  }
  return wrk.format("GET", path, headers)
end
