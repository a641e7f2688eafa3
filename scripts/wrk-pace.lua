-- Paces each wrk connection so that all of them together send about RATE requests
-- per second (env RATE, CONNS): a fixed-rate load, where plain wrk runs flat out.
local rate = tonumber(os.getenv("RATE") or "1000")
local conns = tonumber(os.getenv("CONNS") or "16")

function delay()
  return 1000 * conns / rate
end
