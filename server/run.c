/*
 * The --run mode: once the sockets listen, run CMD through the shell with
 * the address in its environment, and when it exits, stop the server and
 * exit with its status. The easiest way to use a server once, in a script
 * or a test: `stabled --run 'qemu-img info "$uri"' disk.img`.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run.h"
#include "stabled.h"

static void set_uri(const char *unix_path, int port, const char *bind_addr)
{
	char uri[4200], portbuf[16];

	if (unix_path) {
		snprintf(uri, sizeof(uri), "nbd+unix:///?socket=%s", unix_path);
		setenv("unixsocket", unix_path, 1);
		unsetenv("port");
	} else {
		const char *host = bind_addr;

		if (!host || !*host || !strcmp(host, "0.0.0.0"))
			host = "127.0.0.1";
		snprintf(portbuf, sizeof(portbuf), "%d", port);
		if (strchr(host, ':'))
			snprintf(uri, sizeof(uri), "nbd://[%s]:%d/", host, port);
		else
			snprintf(uri, sizeof(uri), "nbd://%s:%d/", host, port);
		setenv("port", portbuf, 1);
		unsetenv("unixsocket");
	}
	setenv("uri", uri, 1);
}

pid_t run_start(const char *cmd, const char *unix_path, int port,
		const char *bind_addr)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		log_err("--run: fork: %m");
		return -1;
	}
	if (pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		set_uri(unix_path, port, bind_addr);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		perror("stabled: --run: /bin/sh");
		_exit(127);
	}
	return pid;
}

int run_status(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	return 1;
}
