// Package proc runs the programs the bench measures, each as a process of its own, and reads
// what the kernel says they used: CPU time from /proc/<pid>/stat (children included), peak
// resident memory (VmHWM) from /proc/<pid>/status, and the machine's busy time from
// /proc/stat. It works on Linux only.
package proc
