-- wrk script: every request to one host (HOST, default bench.example.com),
-- formatted once.

local req

function init(args)
   req = wrk.format("GET", "/", { ["Host"] = os.getenv("HOST") or "bench.example.com" })
end

function request()
   return req
end
