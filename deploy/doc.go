// Package deploy holds what a host installs, beside the benchmark harness:
// the systemd unit, the sysctl file, the default config and the keepalived
// material. It has no code; its tests check that those files are safe to
// install (make install and uninstall, systemd-analyze, ringproxy check,
// the sysctl values against the running kernel's).
package deploy
