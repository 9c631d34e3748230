package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/resources"
)

// Helm: the same environments installed as one helm release each.

// helmLoop installs one release per environment, holding the same objects
// (the project's objects travel with its test environment).
func helmLoop(ctx context.Context, c client.Client, o options, prefix string, projects, par int) (time.Duration, error) {
	type release struct{ name, ns, dir string }
	var releases []release
	for i := 0; i < projects; i++ {
		p := benchProject(projectName(prefix, i))
		projectObjs, _ := resources.ProjectObjects(p)
		for _, stage := range []crmv1alpha1.Stage{crmv1alpha1.StageTest, crmv1alpha1.StageProduction} {
			objs, err := environmentObjects(p, benchEnv(p.Name, string(stage), stage))
			if err != nil {
				return 0, err
			}
			if stage == crmv1alpha1.StageTest {
				for _, obj := range projectObjs {
					if _, ok := obj.(*corev1.Namespace); !ok { // helm creates it
						objs = append(objs, obj)
					}
				}
			}
			dir := filepath.Join(o.workDir, p.Name+"-"+string(stage))
			if err := writeChart(dir, foreign(objs, prefix)); err != nil {
				return 0, err
			}
			releases = append(releases, release{name: string(stage), ns: p.Name, dir: dir})
		}
	}
	start := time.Now()
	err := parallel(len(releases), par, func(i int) error {
		r := releases[i]
		cmd := exec.CommandContext(ctx, o.helm, "install", r.name, r.dir, "--namespace", r.ns, "--create-namespace", "--kubeconfig", o.kubeconfig)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("helm install %s/%s: %v: %s", r.ns, r.name, err, out)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	logf("helm (parallelism %d): releases installed in %.1fs; waiting for readiness", par, time.Since(start).Seconds())
	err = waitWorkloads(ctx, c, prefix, len(releases))
	return time.Since(start), err
}

func writeChart(dir string, objs []client.Object) error {
	if err := os.MkdirAll(filepath.Join(dir, "templates"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "Chart.yaml"), []byte("apiVersion: v2\nname: crm-environment\nversion: 0.1.0\n"), 0o644); err != nil {
		return err
	}
	var b strings.Builder
	for _, obj := range objs {
		data, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		b.WriteString("---\n")
		b.Write(data)
	}
	return os.WriteFile(filepath.Join(dir, "templates", "objects.yaml"), []byte(b.String()), 0o644)
}

// measureHelm installs helmN environments as helm releases, sequentially
// and helmParallelism at a time, against the operator at the same size.
func measureHelm(ctx context.Context, c client.WithWatch, o options, res *Results) error {
	if o.helmN <= 0 {
		return nil
	}
	projects := o.helmN / 2
	res.HelmN = 2 * projects
	opAt, err := operatorConvergence(ctx, c, o, "opref", projects)
	if err != nil {
		return err
	}
	res.OperatorAtHelmN = opAt.Seconds()
	logf("operator at %d environments: %.1fs", res.HelmN, res.OperatorAtHelmN)
	for _, par := range []int{1, helmParallelism} {
		d, err := helmLoop(ctx, c, o, fmt.Sprintf("helm%d", par), projects, par)
		if err != nil {
			return err
		}
		if par == 1 {
			res.HelmSequentialSeconds = d.Seconds()
		} else {
			res.HelmParallelSeconds = d.Seconds()
		}
		logf("helm (parallelism %d): %d releases, all Ready in %.1fs", par, res.HelmN, d.Seconds())
	}
	res.HelmSequentialRatio = res.HelmSequentialSeconds / res.OperatorAtHelmN
	res.HelmParallelRatio = res.HelmParallelSeconds / res.OperatorAtHelmN
	return nil
}
