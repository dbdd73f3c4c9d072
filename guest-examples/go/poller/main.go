// A user-driven feed poller (the Go twin of assemblyscript/poller, same behaviour).
// housekeeping (declared) creates the runtime schedule poll-feed-1 when it is missing;
// poll-feed-* runs count themselves in the cursor and pause their schedule after three polls;
// a payload {"action": …} (a user's request) drives one host function ("policies": creates a
// schedule with retry, priority, DST policy, job and breaker, then reads it back; "view": one
// schedule's typed view).
// With config feed_url set, poll-feed-* runs GET the feed instead and output
// {"new":[{"id","title"}…],"seen":N} (feed.go; config feed_format: json | rss, default sniffed);
// a failed request fails the run with "http: <code>: <message>" or "http: status <n>". Without
// feed_url, nothing changes.
package main

import (
	"encoding/json"
	"fmt"
	"strings"

	hg "hourglass.example/guests/hourglass"
)

//go:wasmexport schedules
func schedules() int32 {
	return hg.Schedules(func() ([]hg.Schedule, error) {
		err := hg.JobsRegister(hg.JobContract{Name: "poll-feed", DisplayName: "Poll a feed", Concurrency: 1, TimeoutMs: 5000,
			Retry: &hg.RetryPolicy{MaxAttempts: 2}}) // the default of schedules naming it (Job)
		return []hg.Schedule{{ID: "housekeeping", Cron: "*/10 * * * * *", Timezone: "Europe/Berlin",
			Description: "Creates the feed poller when it is missing."}}, err
	})
}

//go:wasmexport run
func run() int32 { return hg.Run(handle) }

func handle(ctx *hg.RunContext) (*hg.RunResult, error) {
	var p struct {
		Action   string          `json:"action"`
		ID       string          `json:"id"`
		Schedule json.RawMessage `json:"schedule"`
	}
	var cursor struct{ Ticks, Seen int }
	if err := ctx.DecodePayload(&p); err != nil || ctx.DecodeCursor(&cursor) != nil {
		return nil, fmt.Errorf("bad payload or cursor")
	}
	switch p.Action {
	case "policies":
		return policies(p.ID)
	case "view":
		view, err := hg.ScheduleGet(p.ID)
		return hg.Result(map[string]any{"view": view}), err
	}
	if fn := hg.HostFunction("schedule_" + p.Action); p.Action != "" && fn != nil {
		req, _ := json.Marshal(map[string]string{"id": p.ID})
		if p.Action == "create" {
			req = p.Schedule
		}
		return hg.Result(map[string]json.RawMessage{"response": hg.CallRaw(fn, req)}), nil
	}
	switch {
	case ctx.ScheduleID == "housekeeping":
		_, err := hg.ScheduleGet("poll-feed-1")
		created := hg.HasCode(err, hg.NotFound)
		if created {
			_, err = hg.ScheduleCreate(hg.Schedule{ID: "poll-feed-1", Every: "10s",
				Payload: map[string]string{"feed": "https://example.com/feed"}})
		}
		cursor := map[string]int{"ticks": cursor.Ticks + 1}
		return hg.Result(map[string]bool{"created": created}).SetCursor(cursor), err
	case strings.HasPrefix(ctx.ScheduleID, "poll-feed-"):
		if url, ok := hg.Config("feed_url"); ok && url != "" {
			return pollFeed(url)
		}
		seen := cursor.Seen + 1
		if seen == 3 {
			if _, err := hg.SchedulePause(ctx.ScheduleID, "caught up"); err != nil {
				return nil, err
			}
		}
		var feed struct{ Feed string }
		_ = ctx.DecodePayload(&feed)
		result := map[string]any{"polled": feed.Feed, "seen": seen}
		return hg.Result(result).SetCursor(map[string]int{"seen": seen}), nil
	}
	return nil, fmt.Errorf("unknown schedule: %s", ctx.ScheduleID)
}

// policies creates id with the scheduling policies of issue 14 through the typed bindings,
// reads it back, and returns both typed views (re-encoded) as {"created", "got"}.
func policies(id string) (*hg.RunResult, error) {
	created, err := hg.ScheduleCreate(hg.Schedule{
		ID:       id,
		Cron:     "30 2 * * *",
		Timezone: "Europe/Berlin",
		Dst:      &hg.Dst{Skipped: "skip", Repeated: "twice"},
		Priority: hg.Priority(8),
		Retry: &hg.RetryPolicy{MaxAttempts: 4, Backoff: &hg.Backoff{BaseMs: 500, CapMs: 8000},
			On: []string{"failed", "timed_out"}},
		Job:     "poll-feed",
		Breaker: &hg.Breaker{AfterFailures: 3},
	})
	if err != nil {
		return nil, err
	}
	got, err := hg.ScheduleGet(id)
	return hg.Result(map[string]any{"created": created, "got": got}), err
}

const accept = "application/json, application/rss+xml, application/xml;q=0.9, */*;q=0.5"

// pollFeed reports the feed's items not seen before, and how many were.
func pollFeed(url string) (*hg.RunResult, error) {
	format, _ := hg.Config("feed_format")
	if format != "" && format != "json" && format != "rss" {
		return nil, fmt.Errorf(`feed_format: expected "json" or "rss", got "%s"`, format)
	}
	res := hg.HTTPGet(url, map[string]string{"accept": accept})
	if err := res.Err(); err != nil {
		return nil, err
	}
	body := string(res.Body)
	if format == "" {
		format = sniff(body, res.Headers["content-type"])
	}
	var items []feedItem
	switch format {
	case "json":
		parsed, ok := parseJSONFeed(body)
		if !ok {
			return nil, fmt.Errorf(`feed: not a JSON feed {"items":[…]}`)
		}
		items = parsed
	case "rss":
		items = parseRSS(body)
	default:
		return nil, fmt.Errorf("feed: neither JSON nor RSS (set config feed_format)")
	}
	items = firstDistinct(items)
	var previous []string
	if stored := hg.GetVar(seenVar); len(stored) > 0 {
		previous = strings.Split(string(stored), "\n")
	}
	known := map[string]bool{}
	for _, k := range previous {
		known[k] = true
	}
	type entry struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	fresh := []entry{}
	for _, it := range items {
		if !known[it.Key] {
			fresh = append(fresh, entry{it.ID, it.Title})
		}
	}
	hg.SetVar(seenVar, []byte(strings.Join(nextSeen(items, previous), "\n")))
	return hg.Result(map[string]any{"new": fresh, "seen": len(items) - len(fresh)}), nil
}

func main() {}
