package crm

import (
	"fmt"
	"strconv"
	"strings"
)

// release is the numeric part of a version tag: "v1.8.0" -> [1 8 0],
// "18.0-20260723" -> [18 0]. ok is false for tags that name no release
// ("latest", a digest): the operator cannot judge those and lets them pass.
func release(v string) (nums []int, ok bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	if i := strings.IndexAny(v, "-+@"); i >= 0 {
		v = v[:i]
	}
	if v == "" {
		return nil, false
	}
	for _, part := range strings.Split(v, ".") {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return nil, false
		}
		nums = append(nums, n)
	}
	return nums, true
}

func at(nums []int, i int) int {
	if i < len(nums) {
		return nums[i]
	}
	return 0
}

// compare orders two releases.
func compare(a, b []int) int {
	for i := 0; i < len(a) || i < len(b); i++ {
		if d := at(a, i) - at(b, i); d != 0 {
			return d
		}
	}
	return 0
}

// upgradeBase refuses downgrades, which no product's upgrade undoes.
func upgradeBase(product, from, to string) (f, t []int, judged bool, err error) {
	f, okf := release(from)
	t, okt := release(to)
	if !okf || !okt {
		return nil, nil, false, nil
	}
	if compare(t, f) < 0 {
		return nil, nil, false, fmt.Errorf("%s %s -> %s is a downgrade: the database was upgraded by %s and is not taken back; restore a backup of %s instead", product, from, to, from, to)
	}
	return f, t, true, nil
}

// sameMajor: upgrades stay within a major version (a series).
func sameMajor(product, why string) func(from, to string) error {
	return func(from, to string) error {
		f, t, judged, err := upgradeBase(product, from, to)
		if err != nil || !judged {
			return err
		}
		if at(f, 0) != at(t, 0) {
			return fmt.Errorf("%s %s -> %s changes the major version: %s", product, from, to, why)
		}
		return nil
	}
}

// oneMajorAtATime: a major version may be skipped by no upgrade, and
// versions before minMajor are not supported at all.
func oneMajorAtATime(product string, minMajor int) func(from, to string) error {
	return func(from, to string) error {
		f, t, judged, err := upgradeBase(product, from, to)
		if err != nil || !judged {
			return err
		}
		if at(t, 0)-at(f, 0) > 1 {
			return fmt.Errorf("%s %s -> %s skips a major version: upgrade to %d.x first", product, from, to, at(f, 0)+1)
		}
		if at(f, 0) < minMajor && at(t, 0) >= minMajor {
			return fmt.Errorf("%s %s -> %s: versions before %d use a volume layout the operator does not run; migrate that installation to %d first", product, from, to, minMajor, minMajor)
		}
		return nil
	}
}

// oneMinorAtATime: each minor version's upgrade runs from the one before.
func oneMinorAtATime(product string) func(from, to string) error {
	return func(from, to string) error {
		f, t, judged, err := upgradeBase(product, from, to)
		if err != nil || !judged {
			return err
		}
		if at(f, 0) == at(t, 0) && at(t, 1)-at(f, 1) > 1 {
			return fmt.Errorf("%s %s -> %s skips minor versions: %s upgrades one minor version at a time (next: v%d.%d)", product, from, to, product, at(f, 0), at(f, 1)+1)
		}
		if at(t, 0)-at(f, 0) > 1 {
			return fmt.Errorf("%s %s -> %s skips a major version", product, from, to)
		}
		return nil
	}
}

// CheckUpgrade says whether the product upgrades from -> to in one step.
// The same version, or a product without rules, always passes.
func (p Profile) CheckUpgrade(from, to string) error {
	if from == "" || to == "" || from == to || p.UpgradePath == nil {
		return nil
	}
	return p.UpgradePath(from, to)
}

// CheckVersion says whether the operator runs this version of the product:
// versions before MinVersion are refused (their images need another layout).
func (p Profile) CheckVersion(v string) error {
	if p.MinVersion == "" {
		return nil
	}
	have, ok := release(v)
	min, _ := release(p.MinVersion)
	if ok && compare(have, min) < 0 {
		return fmt.Errorf("%s %s is not supported: the operator runs %s %s and later (the image's volume layout and entrypoint before it differ)", p.Product, v, p.Product, p.MinVersion)
	}
	return nil
}
