package main

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestParseToleration(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    corev1.Toleration
		invalid bool
	}{
		{in: "kwok.x-k8s.io/node=fake:NoSchedule", want: corev1.Toleration{Key: "kwok.x-k8s.io/node", Operator: corev1.TolerationOpEqual, Value: "fake", Effect: corev1.TaintEffectNoSchedule}},
		{in: "dedicated:NoExecute", want: corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}},
		{in: "crm", want: corev1.Toleration{Key: "crm", Operator: corev1.TolerationOpExists}},
		{in: "crm=yes", want: corev1.Toleration{Key: "crm", Operator: corev1.TolerationOpEqual, Value: "yes"}},
		{in: "=x", invalid: true},
		{in: "crm:Never", invalid: true},
	} {
		got, err := parseToleration(tc.in)
		if tc.invalid {
			if err == nil {
				t.Errorf("%q: accepted", tc.in)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}
