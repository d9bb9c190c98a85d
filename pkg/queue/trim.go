package queue

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// trimScript deletes the entries of a stream that no consumer group still needs, in one step so
// that no group can read or claim an entry between the look at the groups and the XTRIM. A
// group needs its pending entries (delivered, not acknowledged) and every entry it has not been
// delivered yet (after its last-delivered-id); everything older than the first of those, for
// every group, goes. A stream without groups is left alone: its entries wait for a group to be
// created (Knative's RedisStreamSource destroys its group when it shuts down).
//
// KEYS[1]: the stream
// Reply: the number of entries deleted.
var trimScript = redis.NewScript(`
if redis.call('TYPE', KEYS[1]).ok ~= 'stream' then
	return 0
end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then
	return 0
end
-- Stream ids are "ms-seq"; numbers are compared as strings, which keeps their 64 bits exact.
local function split(id)
	local ms, seq = string.match(id, '^(%d+)-(%d+)$')
	return ms, seq
end
local function numless(a, b)
	if #a ~= #b then
		return #a < #b
	end
	return a < b
end
local function idless(a, b)
	local am, as = split(a)
	local bm, bs = split(b)
	if am ~= bm then
		return numless(am, bm)
	end
	return numless(as, bs)
end
local keep
for _, g in ipairs(groups) do
	local f = {}
	for i = 1, #g, 2 do
		f[g[i]] = g[i + 1]
	end
	local first
	if f['pending'] > 0 then
		first = redis.call('XPENDING', KEYS[1], f['name'])[2]
	else
		local ms, seq = split(f['last-delivered-id'])
		first = ms .. '-' .. string.format('%d', tonumber(seq) + 1)
	end
	if keep == nil or idless(first, keep) then
		keep = first
	end
end
return redis.call('XTRIM', KEYS[1], 'MINID', keep)
`)

// Trim deletes the entries of stream that every consumer group has acknowledged, keeping each
// group's pending entries and the entries it has not read yet, and returns how many it
// deleted. A missing stream, or one without groups, is left alone.
func Trim(ctx context.Context, client redis.Scripter, stream string) (int64, error) {
	n, err := trimScript.Run(ctx, client, []string{stream}).Int64()
	if err != nil {
		return 0, fmt.Errorf("trim stream %s: %w", stream, Unavailable(err))
	}
	return n, nil
}
