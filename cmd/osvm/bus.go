package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/godbus/dbus/v5"

	"github.com/osvm-project/osvm/supervisor"
)

// callSupervisor calls a method of osvmd's API and stores its reply in out.
func callSupervisor(method string, out []any, args ...any) error {
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		return fmt.Errorf("connect to the system bus: %w (is dbus running?)", err)
	}
	defer conn.Close()
	call := conn.Object(supervisor.BusName, supervisor.ObjectPath).Call(supervisor.Interface+"."+method, 0, args...)
	if call.Err != nil {
		return describeBusError(call.Err)
	}
	if len(out) > 0 {
		return call.Store(out...)
	}
	return nil
}

// describeBusError turns D-Bus errors into the messages an operator needs.
func describeBusError(err error) error {
	var busErr dbus.Error
	if !errors.As(err, &busErr) {
		return err
	}
	message := strings.Join(busErrorBody(busErr), " ")
	switch busErr.Name {
	case "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner":
		return errors.New("osvmd is not running (start it with: systemctl start osvmd)")
	case "org.freedesktop.DBus.Error.AccessDenied":
		return fmt.Errorf("permission denied: %s", message)
	case supervisor.ErrorNoSuchComponent, supervisor.ErrorInvalidFile, supervisor.ErrorFailed:
		return errors.New(message)
	}
	return fmt.Errorf("%s: %s", busErr.Name, message)
}

func busErrorBody(e dbus.Error) []string {
	var parts []string
	for _, v := range e.Body {
		parts = append(parts, fmt.Sprint(v))
	}
	return parts
}

// newFlags returns a flag set for a subcommand that reports mistakes as
// usage errors instead of exiting.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseFlags parses args, which may give flags before or after the
// arguments ("osvm status web --json"), and checks the number of arguments.
func parseFlags(fs *flag.FlagSet, args []string, wantArgs int) error {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "--":
			positional = append(positional, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(args[i], "-") && args[i] != "-":
			flags = append(flags, args[i])
			// A flag that takes a value may give it as the next argument.
			name := strings.TrimLeft(args[i], "-")
			if f := fs.Lookup(name); f != nil && !isBoolFlag(f) && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		default:
			positional = append(positional, args[i])
		}
	}
	if err := fs.Parse(append(flags, append([]string{"--"}, positional...)...)); err != nil {
		return &usageError{err.Error()}
	}
	if fs.NArg() != wantArgs {
		return &usageError{fmt.Sprintf("want %d argument(s), got %d", wantArgs, fs.NArg())}
	}
	return nil
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
