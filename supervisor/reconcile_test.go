package supervisor

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/osvm-project/osvm/internal/config"
	"github.com/osvm-project/osvm/internal/plan"
)

func testPlan(t *testing.T, name, command string) *plan.Plan {
	t.Helper()
	c, err := config.Parse("/etc/osvm/"+name+".toml", fmt.Appendf(nil, "exec.command = [%q]", command))
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.New(c, c.Isolation, "/etc/osvm/"+name+".toml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDecide(t *testing.T) {
	v1 := testPlan(t, "web", "/bin/v1")
	v2 := testPlan(t, "web", "/bin/v2")
	type step struct {
		kind actionKind
		name string
	}
	tests := []struct {
		name string
		want map[string]desired
		have map[string]actual
		out  []step
	}{
		{
			name: "new file starts",
			want: map[string]desired{"web": {plan: v1, fileExists: true}},
			out:  []step{{actionStart, "web"}},
		},
		{
			name: "same plan running is kept",
			want: map[string]desired{"web": {plan: v1, fileExists: true}},
			have: map[string]actual{"web": {loaded: true, activeState: "active", shortHash: v1.ShortHash()}},
		},
		{
			name: "adopted unit after osvmd restart is kept while activating",
			want: map[string]desired{"web": {plan: v1, fileExists: true}},
			have: map[string]actual{"web": {loaded: true, activeState: "activating", shortHash: v1.ShortHash()}},
		},
		{
			name: "changed file replaces",
			want: map[string]desired{"web": {plan: v2, fileExists: true}},
			have: map[string]actual{"web": {loaded: true, activeState: "active", shortHash: v1.ShortHash()}},
			out:  []step{{actionReplace, "web"}},
		},
		{
			name: "changed file replaces a failed unit",
			want: map[string]desired{"web": {plan: v2, fileExists: true}},
			have: map[string]actual{"web": {loaded: true, activeState: "failed", shortHash: v1.ShortHash()}},
			out:  []step{{actionReplace, "web"}},
		},
		{
			name: "failed unit with same plan is left failed",
			want: map[string]desired{"web": {plan: v1, fileExists: true}},
			have: map[string]actual{"web": {loaded: true, activeState: "failed", shortHash: v1.ShortHash()}},
		},
		{
			name: "inactive unit starts",
			want: map[string]desired{"web": {plan: v1, fileExists: true}},
			have: map[string]actual{"web": {loaded: true, activeState: "inactive", shortHash: v1.ShortHash()}},
			out:  []step{{actionStart, "web"}},
		},
		{
			name: "invalid file keeps the running unit",
			want: map[string]desired{"web": {fileExists: true}},
			have: map[string]actual{"web": {loaded: true, activeState: "active", shortHash: v1.ShortHash()}},
		},
		{
			name: "invalid new file starts nothing",
			want: map[string]desired{"web": {fileExists: true}},
		},
		{
			name: "removed file stops",
			have: map[string]actual{"web": {loaded: true, activeState: "active", shortHash: v1.ShortHash()}},
			out:  []step{{actionStop, "web"}},
		},
		{
			name: "removed file of a failed unit stops it",
			have: map[string]actual{"web": {loaded: true, activeState: "failed", shortHash: v1.ShortHash()}},
			out:  []step{{actionStop, "web"}},
		},
		{
			name: "plan that ran and ended is not started again",
			want: map[string]desired{"web": {plan: v1, fileExists: true, started: true}},
		},
		{
			name: "new plan of an ended component starts",
			want: map[string]desired{"web": {plan: v2, fileExists: true}},
			have: map[string]actual{"web": {loaded: true, activeState: "inactive", shortHash: v1.ShortHash()}},
			out:  []step{{actionStart, "web"}},
		},
		{
			name: "operator stop is respected",
			want: map[string]desired{"web": {plan: v2, fileExists: true, stopped: true}},
		},
		{
			name: "unit without a plan hash is replaced",
			want: map[string]desired{"web": {plan: v1, fileExists: true}},
			have: map[string]actual{"web": {loaded: true, activeState: "active"}},
			out:  []step{{actionReplace, "web"}},
		},
		{
			name: "several components in name order",
			want: map[string]desired{"b": {plan: v1, fileExists: true}, "a": {plan: v1, fileExists: true}},
			have: map[string]actual{"c": {loaded: true, activeState: "active"}},
			out:  []step{{actionStart, "a"}, {actionStart, "b"}, {actionStop, "c"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []step
			for _, a := range decide(tt.want, tt.have) {
				got = append(got, step{a.kind, a.component})
				if (a.kind == actionStart || a.kind == actionReplace) && a.plan == nil {
					t.Errorf("%v %s without a plan", a.kind, a.component)
				}
			}
			if !reflect.DeepEqual(got, tt.out) {
				t.Errorf("decide = %v, want %v", got, tt.out)
			}
		})
	}
}
