package supervisor

import (
	"errors"
	"strings"
	"testing"

	"github.com/osvm-project/osvm/internal/config"
	"github.com/osvm-project/osvm/probe"
)

func TestChooseLevel(t *testing.T) {
	thisHost := map[config.Isolation]LevelStatus{
		config.IsolationNone:      {Available: true},
		config.IsolationProcess:   {Available: true},
		config.IsolationContainer: {Available: true},
		config.IsolationMicroVM:   {Reason: "osvm does not implement it yet"},
		config.IsolationUnikernel: {Available: true},
		config.IsolationTEE:       {Reason: "no AMD SEV-SNP and no Intel TDX"},
	}
	noContainer := map[config.Isolation]LevelStatus{
		config.IsolationNone:      {Available: true},
		config.IsolationProcess:   {Available: true},
		config.IsolationContainer: {Reason: "user namespaces are disabled"},
		config.IsolationUnikernel: {Reason: "needs read-write access to /dev/kvm"},
	}
	command := func(isolation, min config.Isolation) *config.Component {
		return &config.Component{Name: "web", Isolation: isolation, MinIsolation: min, Exec: config.Exec{Command: []string{"/bin/true"}}}
	}
	image := func(isolation, min config.Isolation) *config.Component {
		return &config.Component{Name: "uk", Isolation: isolation, MinIsolation: min, Unikernel: config.Unikernel{Image: "/img"}}
	}

	tests := []struct {
		name      string
		component *config.Component
		host      map[config.Isolation]LevelStatus
		want      config.Isolation
		refused   []string // parts of the refusal, when refused
	}{
		{"auto command takes container", command(config.IsolationAuto, ""), thisHost, config.IsolationContainer, nil},
		{"auto command falls to process", command(config.IsolationAuto, ""), noContainer, config.IsolationProcess, nil},
		{"auto image takes unikernel", image(config.IsolationAuto, ""), thisHost, config.IsolationUnikernel, nil},
		{"explicit level kept", command(config.IsolationNone, ""), thisHost, config.IsolationNone, nil},
		{"auto root command skips container", func() *config.Component {
			c := command(config.IsolationAuto, "")
			c.Exec.User = "root"
			return c
		}(), thisHost, config.IsolationProcess, nil},
		{"minimum respected", command(config.IsolationAuto, config.IsolationContainer), noContainer, "",
			[]string{"container: user namespaces are disabled"}},
		{"minimum tee refused for a command", command(config.IsolationAuto, config.IsolationTEE), thisHost, "",
			[]string{`min_isolation "tee" is stronger than any level`, "tee: no AMD SEV-SNP and no Intel TDX"}},
		{"minimum tee refused for an image", image(config.IsolationAuto, config.IsolationTEE), thisHost, "",
			[]string{"tee: no AMD SEV-SNP and no Intel TDX"}},
		{"explicit level missing", image(config.IsolationUnikernel, ""), noContainer, "",
			[]string{"unikernel: needs read-write access to /dev/kvm"}},
		{"explicit level not for commands", command(config.IsolationTEE, ""), thisHost, "",
			[]string{"tee: not a level for this component"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := chooseLevel(tt.component, tt.host)
			if tt.refused == nil {
				if err != nil || got != tt.want {
					t.Fatalf("chooseLevel = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			var refusal *RefusalError
			if !errors.As(err, &refusal) {
				t.Fatalf("chooseLevel = %q, %v; want a refusal", got, err)
			}
			for _, part := range tt.refused {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("refusal %q lacks %q", err, part)
				}
			}
		})
	}
}

func TestHostLevels(t *testing.T) {
	report := &probe.Report{Levels: []probe.LevelStatus{
		{Level: probe.LevelNone, Available: true},
		{Level: probe.LevelProcess, Reasons: []string{"Landlock is disabled"}},
		{Level: probe.LevelContainer, Available: true},
		{Level: probe.LevelMicroVM, Available: true},
		{Level: probe.LevelUnikernel, Available: true},
		{Level: probe.LevelTEE, Reasons: []string{"no AMD SEV-SNP and no Intel TDX"}},
	}}
	levels := HostLevels(report)
	if !levels[config.IsolationNone].Available || !levels[config.IsolationUnikernel].Available || !levels[config.IsolationContainer].Available {
		t.Errorf("none, container or unikernel unavailable: %+v", levels)
	}
	if s := levels[config.IsolationProcess]; s.Available || s.Reason != "Landlock is disabled" {
		t.Errorf("process = %+v, want unavailable for the host's reason", s)
	}
	if s := levels[config.IsolationMicroVM]; s.Available || !strings.Contains(s.Reason, "does not implement") {
		t.Errorf("microvm = %+v, want unavailable because osvm lacks it", s)
	}
	if s := levels[config.IsolationTEE]; s.Available || !strings.Contains(s.Reason, "does not implement") || !strings.Contains(s.Reason, "SEV-SNP") {
		t.Errorf("tee = %+v, want both osvm's and the host's reasons", s)
	}
}
