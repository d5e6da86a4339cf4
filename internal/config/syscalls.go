package config

import (
	"fmt"
	"strings"

	"kernel.org/pub/linux/libs/security/libcap/cap"
)

// capabilityName returns the canonical name of a capability ("CAP_SYS_TIME")
// given in any case, with or without the CAP_ prefix.
func capabilityName(name string) (string, error) {
	lower := strings.ToLower(name)
	if !strings.HasPrefix(lower, "cap_") {
		lower = "cap_" + lower
	}
	value, err := cap.FromName(lower)
	if err != nil {
		return "", fmt.Errorf("unknown capability %q (names are as in capabilities(7), such as \"CAP_NET_BIND_SERVICE\")", name)
	}
	return strings.ToUpper(value.String()), nil
}
