/*
 * smimed: the service.  main() reads the configuration, wires the parts
 * together and waits for signals; everything else lives in its module.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include <smime/smime.h>

#include "cleanse.h"
#include "directory.h"
#include "service.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: smimed [--data DIR] [--listen ADDR:PORT] [--config FILE]\n"
	    "       smimed --check-config | --print-config | --routes   [options]\n"
	    "       smimed backup FILE    [--data DIR] [--config FILE]\n"
	    "       smimed restore FILE   [--data DIR] [--config FILE]\n\n"
	    "The smimed service: certification authority, revocation (CRL, OCSP) and the\n"
	    "REST API of self-hosted S/MIME.  With no configuration it listens on\n"
	    "127.0.0.1:8080, keeps its state under one data folder, creates its CA on\n"
	    "first start and writes the first admin token to DATA/admin.token.\n\n"
	    "  --data DIR          data folder (else $SMIMED_DATA, else the default below)\n"
	    "  --listen ADDR:PORT  listen address (overrides the configuration)\n"
	    "  --config FILE       configuration file (else $SMIMED_CONFIG, else\n"
	    "                      DATA/smimed.conf when it exists)\n"
	    "  --check-config      check the configuration and exit (0 when good)\n"
	    "  --print-config      print every key, its value and its default\n"
	    "  --routes            print the HTTP routes and the roles that may call each\n"
	    "  -h, --help          this help      --version  the version\n\n"
	    "backup FILE   a consistent copy of the whole store, taken while smimed runs;\n"
	    "              the master key (DATA/master.key) is not in it: keep it apart\n"
	    "restore FILE  replace the store with a backup; a running smimed reloads\n\n"
	    "Signals: SIGTERM and SIGINT stop after in-flight requests finish; SIGHUP\n"
	    "reloads the CAs from the store.  See smimed(8).\n");
}

/* One smimed per data folder: an advisory lock held while it runs. */
static int
lock_data(const char *data, struct smime_error *err)
{
	char path[PATH_MAX], pid[32];
	int fd;

	snprintf(path, sizeof(path), "%s/smimed.pid", data);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return smime_error_set(err, SMIME_E_IO, "%s: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		close(fd);
		return smime_error_set(err, SMIME_E_USAGE, "another smimed uses %s (its pid is in %s)",
		    data, path);
	}
	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || write(fd, pid, strlen(pid)) != (ssize_t)strlen(pid)) {
		close(fd);
		return smime_error_set(err, SMIME_E_IO, "%s: %s", path, strerror(errno));
	}
	return fd;  /* kept open (and locked) until exit */
}

/* The pid of the smimed running on data, or 0. */
static pid_t
running_pid(const char *data)
{
	char path[PATH_MAX], buf[32] = "";
	int fd;
	pid_t pid = 0;

	snprintf(path, sizeof(path), "%s/smimed.pid", data);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	if (flock(fd, LOCK_SH | LOCK_NB) != 0) {
		/* Locked: a service holds it. */
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		if (n > 0) {
			buf[n] = '\0';
			pid = (pid_t)atol(buf);
		}
	}
	close(fd);
	return pid;
}

static int
backup_restore(bool restore, const char *file, struct config *cfg)
{
	const struct store_backend *be = store_backend_find(cfg->store);
	struct store *st = NULL;
	struct smime_error err;
	int rc;

	if (be == NULL) {
		fprintf(stderr, "smimed: store: unknown backend '%s'\n", cfg->store);
		return 2;
	}
	if (restore && mkdir(cfg->data, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "smimed: %s: %s\n", cfg->data, strerror(errno));
		return 1;
	}
	if ((rc = be->open(cfg->data, &st, &err)) == 0) {
		rc = restore ? be->restore(st, file, &err) : be->backup(st, file, &err);
		be->close(st);
	}
	if (rc != 0) {
		fprintf(stderr, "smimed: %s: %s\n", restore ? "restore" : "backup", err.message);
		return 1;
	}
	if (!restore) {
		printf("smimed: backup of %s written to %s\n"
		    "smimed: the master key is not in it: keep %s/master.key apart, safely\n",
		    cfg->data, file, cfg->data);
		return 0;
	}
	printf("smimed: %s restored into %s\n", file, cfg->data);
	pid_t pid = running_pid(cfg->data);
	if (pid > 0 && kill(pid, SIGHUP) == 0)
		printf("smimed: the running service (pid %ld) reloads\n", (long)pid);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "listen", required_argument, NULL, 'l' },
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "print-config", no_argument, NULL, 'P' },
		{ "routes", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *data = NULL, *listen = NULL, *config = NULL, *command = NULL, *file = NULL;
	bool check = false, print = false;
	struct service svc;
	struct smime_error err;
	struct http *http = NULL;
	sigset_t sigs;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': data = optarg; break;
		case 'l': listen = optarg; break;
		case 'c': config = optarg; break;
		case 'C': check = true; break;
		case 'P': print = true; break;
		case 'R': http_print_routes(stdout); return 0;
		case 'h': usage(stdout); return 0;
		case 'V': printf("smimed %s\n", SMIME_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		command = argv[optind++];
		if (strcmp(command, "backup") != 0 && strcmp(command, "restore") != 0) {
			fprintf(stderr, "smimed: unknown command '%s' (see smimed --help)\n", command);
			return 2;
		}
		if (optind + 1 != argc) {
			fprintf(stderr, "smimed: %s takes one FILE\n", command);
			return 2;
		}
		file = argv[optind];
	}

	memset(&svc, 0, sizeof(svc));
	if (config_load(&svc.cfg, config, data, &err) != 0) {
		fprintf(stderr, "smimed: configuration: %s\n", err.message);
		return 2;
	}
	if (listen != NULL) {
		free(svc.cfg.listen);
		svc.cfg.listen = strdup(listen);
	}
	if (config_check(&svc.cfg, &err) != 0) {
		fprintf(stderr, "smimed: configuration: %s\n", err.message);
		config_free(&svc.cfg);
		return 2;
	}
	if (print) {
		config_print(&svc.cfg, stdout);
		config_free(&svc.cfg);
		return 0;
	}
	if (check) {
		printf("smimed: configuration is good (data %s, listen %s)\n", svc.cfg.data,
		    svc.cfg.listen);
		config_free(&svc.cfg);
		return 0;
	}
	smime_init();
	/* JSON holds tokens, passwords and PKCS#12 files: wiped when freed. */
	json_set_alloc_funcs(malloc, cleansing_free);
	if (command != NULL) {
		int rc = backup_restore(strcmp(command, "restore") == 0, file, &svc.cfg);
		config_free(&svc.cfg);
		return rc;
	}

	/* Signals go to this thread alone: block them before any thread starts. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	log_init(strcmp(svc.cfg.log_format, "json") == 0);
	umask(077);
	if (mkdir(svc.cfg.data, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "smimed: %s: %s\n", svc.cfg.data, strerror(errno));
		return 1;
	}
	int lock_fd = lock_data(svc.cfg.data, &err);
	if (lock_fd < 0) {
		fprintf(stderr, "smimed: %s\n", err.message);
		config_free(&svc.cfg);
		return 1;
	}
	if (service_open(&svc, &err) != 0 || directory_start(&svc, &svc.directory, &err) != 0 ||
	    http_start(&svc, &http, &err) != 0) {
		log_event("error", "start", "message", err.message, NULL);
		fprintf(stderr, "smimed: %s\n", err.message);
		if (!directory_stop(svc.directory, 1))
			_exit(1);
		svc.directory = NULL;
		service_close(&svc);
		return 1;
	}
	log_event("info", "start", "url", svc.base_url, "listen", svc.cfg.listen, "data",
	    svc.cfg.data, NULL);
	printf("smimed %s listening on %s://%s\n", SMIME_VERSION,
	    *svc.cfg.tls_cert != '\0' ? "https" : "http", svc.cfg.listen);
	if (*svc.cfg.public_listen != '\0')
		printf("public listener (CA certificates, CRLs, OCSP): http://%s\n",
		    svc.cfg.public_listen);
	printf("public URL: %s\nadmin token: %s/admin.token\n", *svc.cfg.public_url != '\0' ?
	    svc.cfg.public_url : svc.base_url, svc.cfg.data);
	fflush(stdout);

	time_t last_refresh = time(NULL);
	for (;;) {
		struct timespec tick = { 5, 0 };
		int sig = sigtimedwait(&sigs, NULL, &tick);
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (sig == SIGHUP) {
			if (service_reload(&svc, &err) != 0)
				log_event("error", "reload", "message", err.message, NULL);
			else {
				log_event("info", "reload", NULL);
				service_crl_refresh(&svc);
			}
		}
		if (time(NULL) - last_refresh >= 60) {
			service_crl_refresh(&svc);
			last_refresh = time(NULL);
		}
	}
	log_event("info", "stop", "grace", "in-flight requests finish", NULL);
	atomic_store(&svc.stopping, true);
	http_stop(http, svc.cfg.shutdown_grace);
	if (!directory_stop(svc.directory, svc.cfg.shutdown_grace)) {
		/* Closing the store under a worker still using it could crash;
		 * every commit is durable already, so leave without closing. */
		log_event("warning", "stopped", "message", "without closing the store", NULL);
		fflush(NULL);
		_exit(0);
	}
	svc.directory = NULL;
	service_close(&svc);
	close(lock_fd);
	log_event("info", "stopped", NULL);
	return 0;
}
