package pkttest

import "testing"

// Verdicts read by name, short name or number, as their program's hook
// reads them, and print back by name.
func TestVerdicts(t *testing.T) {
	for _, c := range []struct {
		text string
		hook Hook
		want Verdict
		name string
	}{
		{"XDP_TX", HookXDP, XDPTX, "XDP_TX"},
		{"pass", HookXDP, XDPPass, "XDP_PASS"},
		{"redirect", HookXDP, XDPRedirect, "XDP_REDIRECT"},
		{"9", HookXDP, Verdict{HookXDP, 9}, "9 (no XDP action)"},
		{"TC_ACT_OK", HookTC, TCOK, "TC_ACT_OK"},
		{"Shot", HookTC, TCShot, "TC_ACT_SHOT"},
		{"redirect", HookTC, TCRedirect, "TC_ACT_REDIRECT"},
		{"TC_ACT_PIPE", HookTC, TCPipe, "TC_ACT_PIPE"},
		{"reclassify", HookTC, TCReclassify, "TC_ACT_RECLASSIFY"},
		{"TC_ACT_STOLEN", HookTC, TCStolen, "TC_ACT_STOLEN"},
		{"-1", HookTC, TCUnspec, "TC_ACT_UNSPEC"},
		{"0xffffffff", HookTC, TCUnspec, "TC_ACT_UNSPEC"},
		{"TC_ACT_UNSPEC", HookTC, TCUnspec, "TC_ACT_UNSPEC"},
		{"-2", HookTC, Verdict{HookTC, 0xfffffffe}, "-2 (no TC action)"},
	} {
		v, err := ParseVerdict(c.text, Target{Hook: c.hook})
		if err != nil || v != c.want || v.String() != c.name {
			t.Errorf("%s (%s): %v %v, want %v %s", c.text, c.hook, v, err, c.want, c.name)
		}
	}
	if _, err := ParseVerdict("XDP_DROP", Target{Hook: HookTC}); err == nil ||
		err.Error() != "XDP_DROP is an XDP verdict, and the program is a TC program: want one of "+names(HookTC) {
		t.Errorf("XDP_DROP of a TC program: %v", err)
	}
}

// What goes on after a verdict, and so is worth writing into a case.
func TestVerdictGoesOn(t *testing.T) {
	for v, want := range map[Verdict]bool{
		XDPPass: true, XDPTX: true, XDPRedirect: true, XDPDrop: false, XDPAborted: false, {HookXDP, 9}: false,
		TCOK: true, TCUnspec: true, TCPipe: true, TCRedirect: true, TCReclassify: true,
		TCShot: false, TCStolen: false, TCQueued: false, TCTrap: false, {HookTC, 42}: false,
	} {
		if v.GoesOn() != want {
			t.Errorf("%s: goes on %v, want %v", v, !want, want)
		}
	}
}
