// Cron schedules declared in discovery, plus the job contract they run.
// weekday-report fires at 09:00 Berlin time on weekdays, nightly-cleanup at 03:30 UTC;
// each run counts itself in the cursor and reports what it did.
package main

import (
	"fmt"

	hg "hourglass.example/guests/hourglass"
)

//go:wasmexport schedules
func schedules() int32 {
	return hg.Schedules(func() ([]hg.Schedule, error) {
		err := hg.JobsRegister(hg.JobContract{
			Name: "weekday-report", DisplayName: "Weekday report",
			Description: "Summarises yesterday's activity for the team.",
			Cron:        "0 9 * * 1-5", Timezone: "Europe/Berlin", TimeoutMs: 30000,
			Input: map[string]any{"team": "string"},
		})
		return []hg.Schedule{
			{ID: "weekday-report", Cron: "0 9 * * 1-5", Timezone: "Europe/Berlin",
				Payload: map[string]string{"team": "platform"}, Misfire: "run-once"},
			{ID: "nightly-cleanup", Cron: "30 3 * * *", Description: "Prunes old reports."},
		}, err
	})
}

//go:wasmexport run
func run() int32 {
	return hg.Run(func(ctx *hg.RunContext) (*hg.RunResult, error) {
		var cursor struct{ Runs int }
		var payload struct{ Team string }
		if err := ctx.DecodeCursor(&cursor); err != nil {
			return nil, err
		}
		var result any
		switch ctx.ScheduleID {
		case "weekday-report":
			_ = ctx.DecodePayload(&payload)
			result = map[string]string{"report": "daily", "team": payload.Team, "for": ctx.ScheduledAt}
		case "nightly-cleanup":
			result = map[string]int{"pruned": 0}
		default:
			return nil, fmt.Errorf("unknown schedule: %s", ctx.ScheduleID)
		}
		return hg.Result(result).SetCursor(map[string]int{"runs": cursor.Runs + 1}), nil
	})
}

//go:wasmexport cleanup
func cleanup() int32 { return hg.Cleanup(func() error { return nil }) }

func main() {}
