package capture

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTallyUnboundedKeepsEveryID(t *testing.T) {
	var tl tally
	for i := range 1000 {
		tl.add(fmt.Sprint(i))
	}
	tl.add("0")
	tl.addApart()
	total, distinct, apart := tl.stats()
	require.Equal(t, []int{1001, 1000, 1}, []int{total, distinct, apart})
	require.Equal(t, 2, tl.count("0"))
	require.Len(t, tl.all(), 1000)
}

func TestTallyBoundedForgetsOldIDsAndStillCountsRecentRepeats(t *testing.T) {
	tl := tally{remember: 100}
	for i := range 1000 {
		tl.add(fmt.Sprint(i))
		if i >= 50 && i%10 == 9 {
			tl.add(fmt.Sprint(i - 50)) // a repeat 50 deliveries later: always remembered
		}
	}
	total, distinct, _ := tl.stats()
	require.Equal(t, 1095, total)
	require.Equal(t, 1000, distinct, "every repeat within the bound is recognised")
	require.LessOrEqual(t, len(tl.all()), 200, "at most two generations are kept")
	require.Equal(t, 2, tl.count("949"), "repeated at 999")
	require.Equal(t, 1, tl.count("999"))
	require.Zero(t, tl.count("0"), "the oldest ids are forgotten")

	// A repeat of a forgotten id counts as a new one.
	tl.add("0")
	total, distinct, _ = tl.stats()
	require.Equal(t, []int{1096, 1001}, []int{total, distinct})
}
