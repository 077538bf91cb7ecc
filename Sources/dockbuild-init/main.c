// dockbuild-init: the init `run --init` can put at /dev/init as the container's PID 1.
//
//   /dev/init [--] COMMAND [ARG...]
//
// It starts COMMAND as its only child (in a process group of its own, in the terminal's
// foreground when stdin is one), forwards every signal it receives to that child, reaps every
// process that ends up as its child (orphans are re-parented to PID 1 in a PID namespace; with
// `--pid host` it asks to be their subreaper), and exits with the child's status: its exit code,
// or 128 + the number of the signal that killed it. A command that cannot be run is 127 (not
// found) or 126 (any other reason).
//
// Built outside SwiftPM with `cc -static` (`make build`): SwiftPM links every executable
// through swiftc, which adds the Swift runtime, and a static link of that warns. Static, it
// needs nothing from the image.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int exit_code(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 1;
}

int main(int argc, char **argv) {
    int first = 1;
    if (first < argc && strcmp(argv[first], "--") == 0) first++;
    if (first >= argc) {
        fprintf(stderr, "dockbuild-init: usage: %s [--] COMMAND [ARG...]\n", argv[0]);
        return 125;
    }

    // every signal is taken with sigtimedwait below; the child gets the mask it had back
    sigset_t all, previous;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &previous);
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

    pid_t child = fork();
    if (child < 0) {
        fprintf(stderr, "dockbuild-init: fork: %s\n", strerror(errno));
        return 125;
    }
    if (child == 0) {
        setpgid(0, 0);
        if (isatty(STDIN_FILENO)) {
            // take the terminal for the new group (SIGTTOU would stop a background caller)
            signal(SIGTTOU, SIG_IGN);
            tcsetpgrp(STDIN_FILENO, getpid());
            signal(SIGTTOU, SIG_DFL);
        }
        sigprocmask(SIG_SETMASK, &previous, NULL);
        execvp(argv[first], &argv[first]);
        int e = errno;
        fprintf(stderr, "dockbuild-init: exec %s: %s\n", argv[first], strerror(e));
        _exit(e == ENOENT ? 127 : 126);
    }
    setpgid(child, child);

    for (;;) {
        // reap whatever has ended: the command, and the orphans that came here
        int code = -1;
        for (;;) {
            int status;
            pid_t p = waitpid(-1, &status, WNOHANG);
            if (p <= 0) break;
            if (p == child) code = exit_code(status);
        }
        if (code >= 0) return code;

        struct timespec tick = {1, 0};
        siginfo_t info;
        int sig = sigtimedwait(&all, &info, &tick);
        if (sig <= 0 || sig == SIGCHLD) continue;
        // passed on as it came: the command decides what it means
        if (kill(child, sig) < 0 && errno != ESRCH) {
            fprintf(stderr, "dockbuild-init: forwarding signal %d: %s\n", sig, strerror(errno));
        }
    }
}
