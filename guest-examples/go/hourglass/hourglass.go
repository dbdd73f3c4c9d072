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
// Exactly one of Cron, Every, At must be set.
type Schedule struct {
	ID          string `json:"id"`
	Cron        string `json:"cron,omitempty"`
	Timezone    string `json:"timezone,omitempty"`
	Every       string `json:"every,omitempty"`
	At          string `json:"at,omitempty"`
	Jitter      string `json:"jitter,omitempty"`
	Payload     any    `json:"payload,omitempty"`
	Overlap     string `json:"overlap,omitempty"` // "skip" (default) | "buffer-one"
	Misfire     string `json:"misfire,omitempty"` // "skip" (default) | "run-once"
	Paused      bool   `json:"paused,omitempty"`
	Description string `json:"description,omitempty"`
	Scope       string `json:"scope,omitempty"` // "cluster" (default) | "host": declared schedules only
}

// ScheduleView is what a schedule looks like to its guest.
type ScheduleView struct {
	ID          string          `json:"id"`
	Origin      string          `json:"origin"` // "declared" | "runtime"
	Cron        *string         `json:"cron"`
	Timezone    *string         `json:"timezone"`
	Every       *string         `json:"every"`
	At          *string         `json:"at"`
	Jitter      *string         `json:"jitter"`
	Overlap     string          `json:"overlap"`
	Misfire     string          `json:"misfire"`
	State       string          `json:"state"` // "active" | "paused" | "completed"
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
}

// RunContext is run()'s input.
type RunContext struct {
	ScheduleID  string          `json:"scheduleId"`
	RunID       string          `json:"runId"`
	Plugin      string          `json:"plugin"`
	ScheduledAt string          `json:"scheduledAt"`
	FiredAt     string          `json:"firedAt"`
	Attempt     int             `json:"attempt"`
	CatchUp     bool            `json:"catchUp"`
	Trigger     string          `json:"trigger"` // "schedule" | "buffered" | "catch_up" | "manual"
	Payload     json.RawMessage `json:"payload"` // "null" when the schedule has none
	Cursor      json.RawMessage `json:"cursor"`  // "null" before the first cursor
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
