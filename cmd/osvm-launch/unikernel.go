package main

import (
	"fmt"
	"os"

	"github.com/osvm-project/osvm/internal/plan"
)

// bootUnikernel boots the component's Hermit image and returns the guest's
// exit status.
//
// TODO: boot through package hermit once it lands; until then a unikernel
// component fails to start with this message.
func bootUnikernel(p *plan.Plan) int {
	fmt.Fprintf(os.Stderr, "osvm-launch: component %s: isolation \"unikernel\" is not supported by this osvm-launch yet\n", p.Component.Name)
	return exitSandbox
}
