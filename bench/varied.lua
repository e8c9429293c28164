-- wrk script: traffic that looks like real clients. Every request differs from the last in
-- its path, query, User-Agent, X-Request-Id and Cookie, so no cache keyed on exact bytes
-- can answer it from memory.
--
--   wrk -s bench/varied.lua http://127.0.0.1:8080 -- /prefix/ [clients [JARFILE]]
--
-- The first argument is the path prefix (default "/"; bench/http.py uses "/big/" for
-- the 64 KiB scenario).
--
-- "clients" as the second argument makes them browsers of a web app on another origin
-- that come back (bench/filters.py): every request carries an Origin, one in 20 is a CORS
-- preflight (OPTIONS with Access-Control-Request-Method), and one in 10 is a new client;
-- the other nine are returning clients that send back the sticky cookie a proxy set
-- (INGRESSCOOKIE, ingress-nginx's default name) along with their own cookies. wrk does
-- not say on which connection an answer came, so each thread keeps a jar of the last
-- JAR sticky cookies it was given, and a returning client sends one of them: a cookie a
-- proxy really set, as a browser would. A route that sets none sees no sticky cookie.
-- With JARFILE (sticky cookies the proxy set, "INGRESSCOOKIE=...", one per line, fetched
-- before the run: bench/filters.py does), the jar is those, and wrk parses no answer:
-- a Lua response callback makes wrk build a table of every header of every answer, which
-- costs wrk (on the same cores as the proxy) more per answer the more fields the route
-- adds (CORS adds five), a cost a real client does not put on the proxy's machine.

local prefix = "/"
local clients = false
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

local NEW_CLIENTS = 10 -- percent of requests from clients without the sticky cookie
local PREFLIGHTS = 5 -- percent of requests that are CORS preflights
local STICKY = "INGRESSCOOKIE="
local JAR = 64
local jar = {}
local jar_next = 1

local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end

-- Keeps the sticky cookie of an answer (wrk's header table keeps the last Set-Cookie of
-- an answer: a proxy appends its own after the backend's).
local function keep_cookie(status, headers, body)
  local set = headers["Set-Cookie"]
  if set and set:sub(1, #STICKY) == STICKY then
    jar[jar_next] = set:match("^([^;]*)")
    jar_next = jar_next % JAR + 1
  end
end

function init(args)
  if args[1] then
    prefix = args[1]
  end
  if args[2] == "clients" then
    clients = true
    if args[3] then
      for line in io.lines(args[3]) do
        if #jar < JAR and line:sub(1, #STICKY) == STICKY then
          jar[#jar + 1] = line
        end
      end
    else
      response = keep_cookie -- defined only here: wrk parses answers' headers only then
    end
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
  local cookie = string.format("session=%x%x; theme=%d; seen=%d", n, counter, counter % 3, n % 1000)
  local headers = {
    ["User-Agent"] = agents[counter % #agents + 1],
    ["Accept"] = "*/*",
    ["X-Request-Id"] = string.format("%08x-%04x-%d-%d", n, counter % 65536, id or 0, counter),
  }
  local method = "GET"
  if clients then
    headers["Origin"] = "https://app.example.com"
    if n % 100 >= NEW_CLIENTS and #jar > 0 then
      cookie = cookie .. "; " .. jar[n % #jar + 1]
    end
    if math.floor(n / 100) % 100 < PREFLIGHTS then
      method = "OPTIONS"
      headers["Access-Control-Request-Method"] = "POST"
      headers["Access-Control-Request-Headers"] = "content-type"
    end
  end
  headers["Cookie"] = cookie
  return wrk.format(method, path, headers)
end
