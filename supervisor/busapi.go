package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
)

// The D-Bus names of osvmd's API on the system bus.
const (
	BusName    = "org.osvm.Supervisor1"
	ObjectPath = dbus.ObjectPath("/org/osvm/Supervisor1")
	Interface  = "org.osvm.Supervisor1"

	// SignalComponentChanged is emitted with (name, active state, sub state)
	// when a component's unit changes its active state.
	SignalComponentChanged = Interface + ".ComponentChanged"
)

// D-Bus error names the API returns.
const (
	ErrorNoSuchComponent = Interface + ".Error.NoSuchComponent"
	ErrorInvalidFile     = Interface + ".Error.InvalidFile"
	ErrorFailed          = Interface + ".Error.Failed"
)

// callTimeout bounds one API call, including the systemd jobs it waits for.
const callTimeout = 3 * time.Minute

// API is the object exported at ObjectPath. Its exported methods are the
// D-Bus methods. List, Status and Capabilities are open to every caller;
// the methods that change components are open to root and to callers that
// polkit authorizes for ActionManage.
type API struct {
	s    *Supervisor
	conn *dbus.Conn
}

// List returns every component: name, unit, active state, sub state and
// file state (valid, invalid, missing or stopped).
func (a API) List() ([]Summary, *dbus.Error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	list, err := a.s.List(ctx)
	return list, busError(err)
}

// Status returns the state of one component as a dictionary.
func (a API) Status(name string) (map[string]dbus.Variant, *dbus.Error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	status, err := a.s.Status(ctx, name)
	return status, busError(err)
}

// Capabilities returns the host's capability report, as osvm doctor
// --json prints it: facts about KVM, Landlock, seccomp, cgroups,
// namespaces, systemd, SEV and TDX, and the status of every isolation
// level, as JSON.
func (a API) Capabilities() (string, *dbus.Error) {
	if a.s.cfg.HostReport == nil {
		return "", dbus.NewError(ErrorFailed, []any{"osvmd has no capability report"})
	}
	data, err := json.Marshal(a.s.cfg.HostReport)
	if err != nil {
		return "", busError(err)
	}
	return string(data), nil
}

// Start starts a component.
func (a API) Start(sender dbus.Sender, name string) *dbus.Error {
	if err := a.authorize(sender); err != nil {
		return err
	}
	return a.call(func(ctx context.Context) error { return a.s.Start(ctx, name) })
}

// Stop stops a component until it is started again.
func (a API) Stop(sender dbus.Sender, name string) *dbus.Error {
	if err := a.authorize(sender); err != nil {
		return err
	}
	return a.call(func(ctx context.Context) error { return a.s.Stop(ctx, name) })
}

// Restart restarts a component.
func (a API) Restart(sender dbus.Sender, name string) *dbus.Error {
	if err := a.authorize(sender); err != nil {
		return err
	}
	return a.call(func(ctx context.Context) error { return a.s.Restart(ctx, name) })
}

// Reload reads the configuration folder again.
func (a API) Reload(sender dbus.Sender) *dbus.Error {
	if err := a.authorize(sender); err != nil {
		return err
	}
	return a.call(a.s.Reload)
}

func (a API) call(fn func(ctx context.Context) error) *dbus.Error {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	return busError(fn(ctx))
}

func busError(err error) *dbus.Error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errNoComponent):
		return dbus.NewError(ErrorNoSuchComponent, []any{err.Error()})
	case errors.Is(err, ErrInvalidFile):
		return dbus.NewError(ErrorInvalidFile, []any{err.Error()})
	default:
		return dbus.NewError(ErrorFailed, []any{err.Error()})
	}
}

// introspection describes the interface for org.freedesktop.DBus.Introspectable.
func introspection() *introspect.Node {
	return &introspect.Node{
		Name: string(ObjectPath),
		Interfaces: []introspect.Interface{
			introspect.IntrospectData,
			{
				Name:    Interface,
				Methods: introspect.Methods(API{}),
				Signals: []introspect.Signal{{
					Name: "ComponentChanged",
					Args: []introspect.Arg{
						{Name: "name", Type: "s"},
						{Name: "active_state", Type: "s"},
						{Name: "sub_state", Type: "s"},
					},
				}},
			},
		},
	}
}

// ExportAPI publishes s on conn at ObjectPath and takes BusName. It fails
// when another process, such as a second osvmd, owns the name.
func ExportAPI(conn *dbus.Conn, s *Supervisor) error {
	if err := conn.Export(API{s: s, conn: conn}, ObjectPath, Interface); err != nil {
		return fmt.Errorf("export %s: %w", ObjectPath, err)
	}
	if err := conn.Export(introspect.NewIntrospectable(introspection()), ObjectPath, "org.freedesktop.DBus.Introspectable"); err != nil {
		return fmt.Errorf("export introspection data: %w", err)
	}
	reply, err := conn.RequestName(BusName, dbus.NameFlagDoNotQueue)
	if err != nil {
		return fmt.Errorf("request bus name %s: %w (is the D-Bus policy file installed in /usr/share/dbus-1/system.d?)", BusName, err)
	}
	if reply != dbus.RequestNameReplyPrimaryOwner {
		return fmt.Errorf("bus name %s is owned by another process: is another osvmd running?", BusName)
	}
	return nil
}

// EmitComponentChanged sends the ComponentChanged signal on conn.
func EmitComponentChanged(conn *dbus.Conn, name, activeState, subState string) error {
	return conn.Emit(ObjectPath, SignalComponentChanged, name, activeState, subState)
}
