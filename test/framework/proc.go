package framework

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Linux reports a process's times in clock ticks of USER_HZ, 100 per second.
const userHZ = 100

// procStat is /proc/<pid>/stat after the command name (which may hold
// spaces): its first element is the state, the 3rd field.
func procStat(pid int) ([]string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 > len(data) {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	return strings.Fields(string(data[i+2:])), nil
}

// ParentPID is the process's parent (the 4th field of its stat).
func ParentPID(pid int) (int, error) {
	stat, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(stat[1])
}

// CPUSeconds is the user and system CPU time the process used.
func CPUSeconds(pid int) (float64, error) {
	stat, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	utime, _ := strconv.ParseFloat(stat[11], 64) // the 14th field
	stime, _ := strconv.ParseFloat(stat[12], 64)
	return (utime + stime) / userHZ, nil
}

// ProcessAge is how long ago the process started (its start time in clock
// ticks after boot, against the system's uptime).
func ProcessAge(pid int) (float64, error) {
	stat, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	uptime, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, err
	}
	started, _ := strconv.ParseFloat(stat[19], 64) // starttime, the 22nd field
	up, _ := strconv.ParseFloat(strings.Fields(string(uptime))[0], 64)
	return up - started/userHZ, nil
}

// RSSMiB is the process's resident memory.
func RSSMiB(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// Environ is a variable of the process's environment ("" when unset).
func Environ(pid int, name string) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return ""
	}
	for _, kv := range strings.Split(string(data), "\x00") {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// Argv is the process's command line.
func Argv(pid int) []string {
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
}

// ProcessesMentioning lists the live processes whose command line mentions
// s, as "pid: command line".
func ProcessesMentioning(s string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(s)) {
			continue
		}
		found = append(found, e.Name()+": "+string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
	}
	return found
}

// Children lists the processes whose parent is pid.
func Children(pid int) []int {
	var found []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if parent, err := ParentPID(child); err == nil && parent == pid {
			found = append(found, child)
		}
	}
	return found
}
