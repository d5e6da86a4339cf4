package supervisor

import (
	"fmt"

	"github.com/godbus/dbus/v5"
)

// ActionManage is the polkit action that lets a caller other than root
// start, stop and restart components and reload the folder. Its defaults
// and the rule that grants it to group osvm ship in packaging/polkit.
const ActionManage = "org.osvm.manage"

// polkit's D-Bus names (polkit(8)).
const (
	polkitName       = "org.freedesktop.PolicyKit1"
	polkitPath       = dbus.ObjectPath("/org/freedesktop/PolicyKit1/Authority")
	polkitCheck      = "org.freedesktop.PolicyKit1.Authority.CheckAuthorization"
	allowInteraction = uint32(1)
)

// polkitSubject is the D-Bus form (sa{sv}) of a polkit subject.
type polkitSubject struct {
	Kind    string
	Details map[string]dbus.Variant
}

// polkitResult is the D-Bus form (bba{ss}) of CheckAuthorization's reply.
type polkitResult struct {
	IsAuthorized bool
	IsChallenge  bool
	Details      map[string]string
}

// authorize lets root through and checks every other caller with polkit.
// It fails closed: when polkit cannot vouch for a caller, for example
// because polkit is not installed, the call is rejected.
func (a API) authorize(sender dbus.Sender) *dbus.Error {
	var uid uint32
	err := a.conn.BusObject().Call("org.freedesktop.DBus.GetConnectionUnixUser", 0, string(sender)).Store(&uid)
	if err != nil {
		return denied(fmt.Sprintf("cannot identify caller %s: %v", sender, err))
	}
	if uid == 0 {
		return nil
	}

	subject := polkitSubject{Kind: "system-bus-name", Details: map[string]dbus.Variant{"name": dbus.MakeVariant(string(sender))}}
	var result polkitResult
	call := a.conn.Object(polkitName, polkitPath).Call(polkitCheck, 0, subject, ActionManage, map[string]string{}, allowInteraction, "")
	if err := call.Store(&result); err != nil {
		return denied(fmt.Sprintf("uid %d needs polkit's permission for %s, and polkit did not answer: %v", uid, ActionManage, err))
	}
	if !result.IsAuthorized {
		return denied(fmt.Sprintf("uid %d is not allowed %s (polkit); use root or join group osvm", uid, ActionManage))
	}
	return nil
}

func denied(message string) *dbus.Error {
	return dbus.NewError("org.freedesktop.DBus.Error.AccessDenied", []any{message})
}
