// Package hourglass is a typed binding of the Hourglass guest ABI (docs/guest-abi.md) over the
// official Extism Go PDK (github.com/extism/go-pdk), for Go's own wasip1 target:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm .
//
// Host functions (extism:host/user) return Go values and a *HostError for the host's
// {"error":{"code","message"}} answers. The export helpers Schedules, Run and Cleanup do the
// Extism input/output/error plumbing; call them from your //go:wasmexport functions.
package hourglass

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/extism/go-pdk"
)

//go:wasmimport extism:host/user jobs_register
func jobsRegister(uint64) uint64

//go:wasmimport extism:host/user schedule_create
func scheduleCreate(uint64) uint64

//go:wasmimport extism:host/user schedule_pause
func schedulePause(uint64) uint64

//go:wasmimport extism:host/user schedule_resume
func scheduleResume(uint64) uint64

//go:wasmimport extism:host/user schedule_delete
func scheduleDelete(uint64) uint64

//go:wasmimport extism:host/user schedule_get
func scheduleGet(uint64) uint64

//go:wasmimport extism:host/user schedule_list
func scheduleList(uint64) uint64

// ErrorCode is the code of a host function's error answer.
type ErrorCode string

const (
	InvalidArgument ErrorCode = "invalid_argument"
	NotFound        ErrorCode = "not_found"
	Conflict        ErrorCode = "conflict"
	QuotaExceeded   ErrorCode = "quota_exceeded"
	Phase           ErrorCode = "phase"
	Capability      ErrorCode = "capability"
	TooLarge        ErrorCode = "too_large"
	Busy            ErrorCode = "busy" // the tenant's share of host-call time is used up; retry later
	Internal        ErrorCode = "internal"
)

// HostError is a host function's {"error": …} answer.
type HostError struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
}

func (e *HostError) Error() string { return string(e.Code) + ": " + e.Message }

// HasCode reports whether err is a *HostError with this code.
func HasCode(err error, code ErrorCode) bool {
	var he *HostError
	return errors.As(err, &he) && he.Code == code
}

// Schedule is a schedule declaration: a schedules() entry or a ScheduleCreate request.
// Exactly one of Cron, Every, At must be set. Fields left at their zero value are not sent
// (the host's default applies); Priority is a pointer because 0 is a priority: use
// Priority(n).
type Schedule struct {
	ID          string       `json:"id"`
	Cron        string       `json:"cron,omitempty"`
	Timezone    string       `json:"timezone,omitempty"`
	Dst         *Dst         `json:"dst,omitempty"` // cron only; default: the pattern's
	Every       string       `json:"every,omitempty"`
	At          string       `json:"at,omitempty"`
	Jitter      string       `json:"jitter,omitempty"`
	Payload     any          `json:"payload,omitempty"`
	Overlap     string       `json:"overlap,omitempty"` // "skip" (default) | "buffer-one"
	Misfire     string       `json:"misfire,omitempty"` // "skip" (default) | "run-once"
	Paused      bool         `json:"paused,omitempty"`
	Description string       `json:"description,omitempty"`
	Scope       string       `json:"scope,omitempty"`    // "cluster" (default) | "host": declared schedules only
	Priority    *int         `json:"priority,omitempty"` // 0..9 (default 5), higher first at the tenant's cap
	Retry       *RetryPolicy `json:"retry,omitempty"`    // default: the job contract's, else one attempt
	Job         string       `json:"job,omitempty"`      // a job contract this plugin registers
	Breaker     *Breaker     `json:"breaker,omitempty"`  // default: the tenant's breakerAfterFailures
}

// Priority returns a pointer to p, for Schedule.Priority.
func Priority(p int) *int { return &p }

// Dst is a cron schedule's daylight-saving policy. In a declaration either may be "" (the
// pattern's default); a view always has both.
type Dst struct {
	Skipped  string `json:"skipped,omitempty"`  // a wall time that does not exist: "skip" | "run-once"
	Repeated string `json:"repeated,omitempty"` // a wall time that happens twice: "once" | "twice"
}

// RetryPolicy retries a failed tick (declarations, ScheduleCreate, job contracts); a view's
// policy has every default filled in.
type RetryPolicy struct {
	MaxAttempts int      `json:"maxAttempts"`       // 1..10, the first attempt included
	Backoff     *Backoff `json:"backoff,omitempty"` // default: base 1,000 ms, cap 60,000 ms
	// Outcomes that retry (default "failed", "trapped", "timed_out"; also "stack_overflow",
	// "worker_crashed"; never "out_of_fuel", "memory_limit", "host_call_denied").
	On []string `json:"on,omitempty"`
}

// Backoff is exponential with full jitter: the delay before attempt n+1 is drawn from
// [0, min(CapMs, BaseMs·2^(n-1))]. Zero fields take the default.
type Backoff struct {
	BaseMs int `json:"baseMs,omitempty"`
	CapMs  int `json:"capMs,omitempty"`
}

// Breaker pauses the schedule after AfterFailures failed ticks in a row (0: never).
type Breaker struct {
	AfterFailures int `json:"afterFailures"`
}

// ScheduleView is what a schedule looks like to its guest.
type ScheduleView struct {
	ID       string  `json:"id"`
	Origin   string  `json:"origin"` // "declared" | "runtime"
	Cron     *string `json:"cron"`
	Timezone *string `json:"timezone"`
	Dst      *Dst    `json:"dst"` // a cron schedule's policy in force (its own or the pattern's); nil otherwise
	Every    *string `json:"every"`
	At       *string `json:"at"`
	Jitter   *string `json:"jitter"`
	Overlap  string  `json:"overlap"`
	Misfire  string  `json:"misfire"`
	Priority int     `json:"priority"` // the one in force (5 unless declared)
	// Its own policy, defaults filled in; nil: the job contract's, else one attempt.
	Retry       *RetryPolicy    `json:"retry"`
	Job         *string         `json:"job"`
	Breaker     *Breaker        `json:"breaker"`    // its own; nil: the tenant's default
	FailStreak  int             `json:"failStreak"` // failed ticks in a row (the breaker's count)
	State       string          `json:"state"`      // "active" | "paused" | "completed"
	PauseNote   *string         `json:"pauseNote"`
	NextRunAt   *string         `json:"nextRunAt"`
	Payload     json.RawMessage `json:"payload"`
	Description *string         `json:"description"`
}

// SchedulePage is one page of ScheduleList.
type SchedulePage struct {
	Schedules []ScheduleView `json:"schedules"`
	Next      *string        `json:"next"`
}

// JobContract documents a job for operators (JobsRegister, discovery only).
type JobContract struct {
	Name        string         `json:"name"`
	DisplayName string         `json:"displayName,omitempty"`
	Description string         `json:"description,omitempty"`
	Cron        string         `json:"cron,omitempty"`
	Timezone    string         `json:"timezone,omitempty"`
	Concurrency int            `json:"concurrency,omitempty"`
	TimeoutMs   int            `json:"timeoutMs,omitempty"`
	Input       map[string]any `json:"input,omitempty"`
	Retry       *RetryPolicy   `json:"retry,omitempty"` // the default of schedules naming it (Job)
}

// RunContext is run()'s input.
type RunContext struct {
	ScheduleID  string `json:"scheduleId"`
	RunID       string `json:"runId"`
	Plugin      string `json:"plugin"`
	ScheduledAt string `json:"scheduledAt"`
	FiredAt     string `json:"firedAt"`
	Attempt     int    `json:"attempt"` // 1, or n+1 for a retry of the same tick (same ScheduledAt)
	CatchUp     bool   `json:"catchUp"`
	// "schedule" | "buffered" | "catch_up" | "manual" | "retry" | "backfill"
	Trigger string          `json:"trigger"`
	Payload json.RawMessage `json:"payload"` // "null" when the schedule has none
	Cursor  json.RawMessage `json:"cursor"`  // "null" before the first cursor
}

// DecodePayload decodes the payload into v (left unchanged when there is none).
func (c *RunContext) DecodePayload(v any) error { return decodeOptional(c.Payload, v) }

// DecodeCursor decodes the previous run's cursor into v (left unchanged when there is none).
func (c *RunContext) DecodeCursor(v any) error { return decodeOptional(c.Cursor, v) }

func decodeOptional(raw json.RawMessage, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return json.Unmarshal(raw, v)
}

// RunResult is run()'s output. Without SetCursor the cursor stays as it was; ClearCursor
// clears it. A nil *RunResult writes no output (cursor unchanged, no result).
type RunResult struct {
	Result    any
	cursor    any
	hasCursor bool
}

// Result returns a run result carrying result (and no cursor change).
func Result(result any) *RunResult { return &RunResult{Result: result} }

// SetCursor sets the cursor the next run of this schedule receives.
func (r *RunResult) SetCursor(cursor any) *RunResult {
	r.cursor, r.hasCursor = cursor, true
	return r
}

// ClearCursor makes the next run receive a null cursor.
func (r *RunResult) ClearCursor() *RunResult { return r.SetCursor(nil) }

func (r *RunResult) MarshalJSON() ([]byte, error) {
	out := map[string]any{}
	if r.hasCursor {
		out["cursor"] = r.cursor
	}
	if r.Result != nil {
		out["result"] = r.Result
	}
	return json.Marshal(out)
}

// call sends request (as JSON) to a host function and decodes its ok value into out.
func call(fn func(uint64) uint64, request any, out any) error {
	body, err := json.Marshal(request)
	if err != nil {
		return err
	}
	answer := CallRaw(fn, body)
	var res struct {
		Ok    json.RawMessage `json:"ok"`
		Error *HostError      `json:"error"`
	}
	if err := json.Unmarshal(answer, &res); err != nil {
		return fmt.Errorf("unexpected host response %q: %w", answer, err)
	}
	if res.Error != nil {
		return res.Error
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(res.Ok, out)
}

// CallRaw sends request verbatim to a host function and returns its whole JSON answer.
func CallRaw(fn func(uint64) uint64, request []byte) []byte {
	mem := pdk.AllocateBytes(request)
	defer mem.Free()
	resp := pdk.FindMemory(fn(mem.Offset()))
	defer resp.Free()
	return resp.ReadBytes()
}

// HostFunction returns the raw import for a host function name (nil for an unknown name).
func HostFunction(name string) func(uint64) uint64 {
	return map[string]func(uint64) uint64{
		"jobs_register": jobsRegister, "schedule_create": scheduleCreate,
		"schedule_pause": schedulePause, "schedule_resume": scheduleResume,
		"schedule_delete": scheduleDelete, "schedule_get": scheduleGet, "schedule_list": scheduleList,
	}[name]
}

type idRequest struct {
	ID string `json:"id"`
}

// JobsRegister registers (or replaces) a job contract; discovery only.
func JobsRegister(c JobContract) error { return call(jobsRegister, c, nil) }

// ScheduleCreate creates a runtime schedule (Conflict if the id exists).
func ScheduleCreate(s Schedule) (*ScheduleView, error) {
	var v ScheduleView
	return &v, call(scheduleCreate, s, &v)
}

// SchedulePause pauses one of this plugin's schedules; note (may be "") is shown to operators.
func SchedulePause(id, note string) (*ScheduleView, error) {
	req := struct {
		ID   string `json:"id"`
		Note string `json:"note,omitempty"`
	}{id, note}
	var v ScheduleView
	return &v, call(schedulePause, req, &v)
}

func ScheduleResume(id string) (*ScheduleView, error) {
	var v ScheduleView
	return &v, call(scheduleResume, idRequest{id}, &v)
}

func ScheduleDelete(id string) error { return call(scheduleDelete, idRequest{id}, nil) }

// ScheduleGet returns one of this plugin's schedules; another plugin's id is NotFound.
func ScheduleGet(id string) (*ScheduleView, error) {
	var v ScheduleView
	return &v, call(scheduleGet, idRequest{id}, &v)
}

// ScheduleList lists this plugin's schedules, limit at a time (0: host default), after id after.
func ScheduleList(limit int, after string) (*SchedulePage, error) {
	req := struct {
		Limit int    `json:"limit,omitempty"`
		After string `json:"after,omitempty"`
	}{limit, after}
	var l SchedulePage
	return &l, call(scheduleList, req, &l)
}

// fail reports err through Extism's error_set; the export then returns 1.
func fail(err error) int32 {
	pdk.SetError(err)
	return 1
}

// Schedules implements the schedules() export with declare.
func Schedules(declare func() ([]Schedule, error)) int32 {
	list, err := declare()
	if err != nil {
		return fail(err)
	}
	if list == nil {
		list = []Schedule{}
	}
	if err := pdk.OutputJSON(list); err != nil {
		return fail(err)
	}
	return 0
}

// Run implements the run() export with handle.
func Run(handle func(ctx *RunContext) (*RunResult, error)) int32 {
	var ctx RunContext
	if err := pdk.InputJSON(&ctx); err != nil {
		return fail(fmt.Errorf("run context: %w", err))
	}
	res, err := handle(&ctx)
	if err != nil {
		return fail(err)
	}
	if res != nil {
		if err := pdk.OutputJSON(res); err != nil {
			return fail(err)
		}
	}
	return 0
}

// Cleanup implements the cleanup() export with fn (no host functions are allowed in it).
func Cleanup(fn func() error) int32 {
	if err := fn(); err != nil {
		return fail(err)
	}
	return 0
}
