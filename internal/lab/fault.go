package lab

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// FaultEnv names the test-only fault injection: "STEP" makes Up fail at
// the start of that step's work, "STEP:N" after N of its actions
// (containers or links). The fault tests use it to prove that a failure at
// any point leaves nothing behind.
const FaultEnv = "DSRLAB_FAULT"

// ErrInjected marks a failure made on purpose by FaultEnv.
type ErrInjected struct{ Step string }

func (e ErrInjected) Error() string { return "fault injected at " + e.Step + " (" + FaultEnv + ")" }

type fault struct {
	step  string
	after int // -1: at the start of the step
}

func faultFromEnv() (fault, error) {
	v := os.Getenv(FaultEnv)
	if v == "" {
		return fault{}, nil
	}
	step, n, hasN := strings.Cut(v, ":")
	f := fault{step: step, after: -1}
	if hasN {
		var err error
		if f.after, err = strconv.Atoi(n); err != nil || f.after < 0 {
			return fault{}, fmt.Errorf("%s=%q: want STEP or STEP:N", FaultEnv, v)
		}
	}
	return f, nil
}

// atStart fails when the fault is set for the start of step.
func (f fault) atStart(step string) error {
	if f.step == step && f.after < 0 {
		return ErrInjected{Step: step}
	}
	return nil
}

// atAction fails before the action after done others in step, when the
// fault is set for step after that many.
func (f fault) atAction(step string, done int) error {
	if f.step == step && f.after >= 0 && done >= f.after {
		return ErrInjected{Step: fmt.Sprintf("%s:%d", step, done)}
	}
	return nil
}
