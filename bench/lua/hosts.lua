-- wrk script: spread requests over HOSTS hosts (host-N.example.com), each
-- wrk thread walking the hosts from a random starting point.
-- Requests are formatted once in init(), not per request.
-- Env: HOSTS (default 1000), CANARY_EVERY (default 0 = never): every n-th
-- request carries the header canary's header `x-canary: always`.

local requests = {}
local canary_requests = {}
local hosts = tonumber(os.getenv("HOSTS") or "1000")
local canary_every = tonumber(os.getenv("CANARY_EVERY") or "0")
local next_host = 0
local sent = 0

function init(args)
   for i = 0, hosts - 1 do
      local host = "host-" .. i .. ".example.com"
      requests[i] = wrk.format("GET", "/", { ["Host"] = host })
      canary_requests[i] = wrk.format("GET", "/", { ["Host"] = host, ["x-canary"] = "always" })
   end
   math.randomseed(os.time())
   next_host = math.random(0, hosts - 1)
end

function request()
   next_host = (next_host + 1) % hosts
   sent = sent + 1
   if canary_every > 0 and sent % canary_every == 0 then
      return canary_requests[next_host]
   end
   return requests[next_host]
end
