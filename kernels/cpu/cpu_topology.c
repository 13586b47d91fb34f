/* cpu_topology.c — how many threads the CPU backend starts: by default the
 * physical cores this process may run on, and never more than the CPUs it
 * may run on (a compute thread past those can only wait for a turn, and
 * the others wait for it). Two hardware threads of one core
 * share its vector units, so a second thread per core adds contention, not
 * speed, to these compute- and memory-bound kernels (llama.cpp defaults to
 * physical cores for the same reason).
 * Reads the affinity mask (taskset, cgroups' cpusets) and Linux's
 * /sys/devices/system/cpu/cpuN/topology; a CPU whose topology cannot be
 * read counts as a core of its own. Depends on libc only. */
#include "backend.h"

#include <sched.h>
#include <stdio.h>
#include <unistd.h>

/* the topology id in /sys for cpu, or -1 */
static long topology_id(int cpu, const char *what)
{
    char path[96];
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/%s", cpu, what);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long v = -1;
    if (fscanf(f, "%ld", &v) != 1) v = -1;
    fclose(f);
    return v;
}

int anc_cpu_available(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int anc_cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (int)n : 1;
    }
    static long seen[CPU_SETSIZE][2]; /* (package, core) pairs counted so far */
    int cores = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &set)) continue;
        long pkg = topology_id(cpu, "physical_package_id"), core = topology_id(cpu, "core_id");
        int dup = 0;
        if (pkg >= 0 && core >= 0)
            for (int i = 0; i < cores && !dup; i++) dup = seen[i][0] == pkg && seen[i][1] == core;
        if (dup) continue;
        seen[cores][0] = pkg;
        seen[cores][1] = core < 0 ? -1 - cpu : core; /* unknown: its own core */
        cores++;
    }
    return cores > 0 ? cores : 1;
}
