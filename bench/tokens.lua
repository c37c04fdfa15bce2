-- wrk script: every request carries the next token of a token file
-- (one JWT per line), round robin, as "Authorization: Bearer <jwt>".
-- Usage: wrk ... -s bench/tokens.lua <url> -- <token file> [offset]
-- With no token file it sends no Authorization header (plain proxy runs).
-- done() prints one machine-readable RESULT line for bench/run.sh.

local headers = {}
local n, i = 0, 0

function init(args)
  local path = args[1]
  if path ~= nil and path ~= "" then
    for line in io.lines(path) do
      if line ~= "" then
        n = n + 1
        headers[n] = { ["Authorization"] = "Bearer " .. line }
      end
    end
    if n == 0 then
      error("no tokens in " .. path)
    end
  end
  i = tonumber(args[2] or "0") % math.max(n, 1)
end

function request()
  if n == 0 then
    return wrk.format(nil, nil, nil)
  end
  i = i + 1
  if i > n then
    i = 1
  end
  return wrk.format(nil, nil, headers[i])
end

function done(summary, latency, requests)
  local non2xx = summary.errors.status
  local sockerr = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT rps=%.1f requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d non2xx=%d sockerr=%d\n",
    summary.requests / (summary.duration / 1e6), summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.max, non2xx, sockerr))
end
