package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// dist summarises a set of durations, in milliseconds.
type dist struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

// summarize computes nearest-rank percentiles of ns (nanoseconds).
func summarize(ns []int64) dist {
	if len(ns) == 0 {
		return dist{}
	}
	s := slices.Clone(ns)
	slices.Sort(s)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return ms(s[max(0, min(i, len(s)-1))])
	}
	var sum float64
	for _, v := range s {
		sum += float64(v)
	}
	return dist{N: len(s), P50: rank(0.50), P90: rank(0.90), P99: rank(0.99),
		Max: ms(s[len(s)-1]), Mean: round3(sum / float64(len(s)) / 1e6)}
}

func ms(ns int64) float64 { return round3(float64(ns) / 1e6) }

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// cells formats a dist for the table: p50 p90 p99 max.
func (d dist) cells() []string {
	if d.N == 0 {
		return []string{"-", "-", "-", "-"}
	}
	return []string{f3(d.P50), f3(d.P90), f3(d.P99), f3(d.Max)}
}

func f3(v float64) string { return fmt.Sprintf("%.3f", v) }

// output writes the human-readable tables and the final JSON line of each
// scenario to stdout, and progress to stderr.
type output struct {
	out, log io.Writer
}

func (o *output) progress(format string, args ...any) {
	fmt.Fprintf(o.log, "parley-bench: "+format+"\n", args...)
}

// table prints a titled, aligned table.
func (o *output) table(title string, header []string, rows [][]string) {
	fmt.Fprintf(o.out, "\n%s\n", title)
	tw := tabwriter.NewWriter(o.out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t")+"\t")
	}
	tw.Flush()
}

// result prints the scenario's one JSON line, the machine-readable result.
func (o *output) result(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(o.out, "%s\n", b)
	return err
}
