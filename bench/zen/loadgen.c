/* Closed-loop load generator for the chapter 7 benchmark: epoll, C, one thread.
 *
 * Opens N connections; each keeps P questions outstanding (sends a new one for every answer).
 * Every answer is checked against the question it answers. After a warm-up, a measured window
 * counts answers and records each one's latency (from the send of its question) in a
 * histogram. It also reports its own CPU share in the window: near 1.0 means the load
 * generator, not the server, was the bottleneck.
 *
 * usage: loadgen HOST PORT CONNECTIONS PIPELINE WARMUP_S MEASURE_S [IDLE]
 * With IDLE > 0 it first opens IDLE extra connections that never send, prints
 * "IDLE <open> <failed>", and waits for a line on stdin before the active phase.
 * Prints one JSON object on stdout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HIST_US 200000 /* 1 us buckets up to 200 ms; beyond goes to the overflow count */

static const char *questions[] = {"Beautiful is better than?", "Explicit is better than?",
                                  "Simple is better than?"};
static const char *answers[] = {"Ugly.", "Implicit.", "Complex."};

struct conn {
    int fd, connected, id;
    uint64_t sent, answered, measured;
    double *stamps; /* send time of each outstanding question, a ring of P */
    char in[256];
    size_t in_len;
    char *out;
    size_t out_len, out_cap;
};

static uint32_t hist[HIST_US];
static uint64_t overflow, errors_, measured_total;
static double max_latency;
static int P;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int open_conn(struct sockaddr_in *addr) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)addr, sizeof *addr) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static void queue(struct conn *c, double t, int count) {
    for (int i = 0; i < count; i++) {
        const char *q = questions[(c->sent + (uint64_t)c->id) % 3];
        size_t n = strlen(q);
        if (c->out_len + n > c->out_cap) {
            c->out_cap = (c->out_len + n) * 2 + 256;
            c->out = realloc(c->out, c->out_cap);
        }
        memcpy(c->out + c->out_len, q, n);
        c->out_len += n;
        c->stamps[c->sent % (uint64_t)P] = t;
        c->sent++;
    }
}

static int flush(struct conn *c) {
    while (c->out_len) {
        ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
        if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
        memmove(c->out, c->out + n, c->out_len - (size_t)n);
        c->out_len -= (size_t)n;
    }
    return 0;
}

/* Wait until the sockets in fds[] are connected (or failed); returns how many connected. */
static int wait_connected(int *fds, int n, int *ok, double deadline) {
    int ep = epoll_create1(0), pending = 0, good = 0;
    for (int i = 0; i < n; i++) {
        ok[i] = 0;
        if (fds[i] < 0) continue;
        struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
        pending++;
    }
    struct epoll_event evs[1024];
    while (pending > 0 && now() < deadline) {
        int k = epoll_wait(ep, evs, 1024, 100);
        for (int j = 0; j < k; j++) {
            int i = (int)evs[j].data.u32, err = 0;
            socklen_t len = sizeof err;
            getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &err, &len);
            epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
            pending--;
            if (!err) { ok[i] = 1; good++; }
        }
    }
    close(ep);
    return good;
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: loadgen HOST PORT CONNECTIONS PIPELINE WARMUP_S MEASURE_S [IDLE]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    inet_pton(AF_INET, argv[1], &addr.sin_addr);
    int N = atoi(argv[3]);
    P = atoi(argv[4]);
    double warmup = atof(argv[5]), measure = atof(argv[6]);
    int idle = argc > 7 ? atoi(argv[7]) : 0;
    int idle_open = 0, idle_failed = 0;
    int *idle_fds = NULL;
    if (idle > 0) {
        idle_fds = malloc(sizeof(int) * (size_t)idle);
        int *ok = malloc(sizeof(int) * (size_t)idle);
        /* In batches, so the server's accept queue is never overrun. */
        for (int start = 0; start < idle; start += 500) {
            int n = idle - start < 500 ? idle - start : 500;
            for (int i = 0; i < n; i++) idle_fds[start + i] = open_conn(&addr);
            idle_open += wait_connected(idle_fds + start, n, ok + start, now() + 10.0);
        }
        idle_failed = idle - idle_open;
        printf("IDLE %d %d\n", idle_open, idle_failed);
        fflush(stdout);
        char line[64];
        if (!fgets(line, sizeof line, stdin)) return 1;
        free(ok);
    }

    struct conn *cs = calloc((size_t)N, sizeof(struct conn));
    int *fds = malloc(sizeof(int) * (size_t)N), *ok = malloc(sizeof(int) * (size_t)N);
    /* Connect in batches, so that a burst of SYNs does not overflow the accept queue. */
    int connected = 0;
    for (int start = 0; start < N; start += 250) {
        int n = N - start < 250 ? N - start : 250;
        for (int i = 0; i < n; i++) fds[start + i] = open_conn(&addr);
        connected += wait_connected(fds + start, n, ok + start, now() + 5.0);
    }
    int ep = epoll_create1(0);
    double t = now();
    for (int i = 0; i < N; i++) {
        cs[i].fd = fds[i];
        cs[i].id = i;
        cs[i].stamps = calloc((size_t)P, sizeof(double));
        if (!ok[i]) continue;
        cs[i].connected = 1;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
        queue(&cs[i], t, P);
        flush(&cs[i]);
    }
    /* The warm-up starts once every connection has had its first answer (or after 2 s:
     * a server that serves one client at a time never answers the others). */
    double primed_by = now() + 2.0, begin = 1e300, end = 1e300;
    int primed = 0;
    double cpu0 = 0, cpu1 = 0, wall0 = 0, wall1 = 0;
    int in_window = 0, broken = 0;
    struct epoll_event evs[1024];
    static char buf[65536];
    for (;;) {
        double t0 = now();
        if (begin > 1e299 && (primed >= connected || t0 >= primed_by)) {
            begin = t0 + warmup;
            end = begin + measure;
        }
        if (!in_window && t0 >= begin) { in_window = 1; cpu0 = cpu(); wall0 = t0; }
        if (t0 >= end) { cpu1 = cpu(); wall1 = t0; break; }
        int k = epoll_wait(ep, evs, 1024, 10);
        double tn = now();
        int measuring = tn >= begin && tn < end;
        for (int j = 0; j < k; j++) {
            struct conn *c = &cs[evs[j].data.u32];
            if (evs[j].events & EPOLLOUT) {
                if (flush(c) < 0) goto lost;
                if (!c->out_len) {
                    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)c->id};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
            if (!(evs[j].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
            ssize_t n = recv(c->fd, buf, sizeof buf, 0);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
            if (n <= 0) goto lost;
            int got = 0;
            for (ssize_t x = 0; x < n; x++) {
                char ch = buf[x];
                if (c->in_len >= sizeof c->in) { errors_++; goto lost; }
                c->in[c->in_len++] = ch;
                if (ch != '.') continue;
                const char *want = answers[(c->answered + (uint64_t)c->id) % 3];
                if (c->in_len != strlen(want) || memcmp(c->in, want, c->in_len) != 0) errors_++;
                double lat = tn - c->stamps[c->answered % (uint64_t)P];
                if (c->answered == 0) primed++;
                c->answered++;
                c->in_len = 0;
                got++;
                if (measuring) {
                    c->measured++;
                    measured_total++;
                    uint64_t us = (uint64_t)(lat * 1e6);
                    if (us < HIST_US) hist[us]++; else overflow++;
                    if (lat > max_latency) max_latency = lat;
                }
            }
            if (got) {
                queue(c, tn, got);
                if (flush(c) < 0) goto lost;
                if (c->out_len) {
                    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT,
                                             .data.u32 = (uint32_t)c->id};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
            continue;
        lost:
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            c->fd = -1;
            c->connected = 0;
            broken++;
        }
    }
    double wall = wall1 - wall0;
    uint64_t target50 = (measured_total + 1) / 2, target99 = measured_total - measured_total / 100;
    uint64_t acc = 0;
    long p50 = -1, p99 = -1;
    for (long us = 0; us < HIST_US && (p50 < 0 || p99 < 0); us++) {
        acc += hist[us];
        if (p50 < 0 && acc >= target50 && measured_total) p50 = us;
        if (p99 < 0 && acc >= target99 && measured_total) p99 = us;
    }
    if (measured_total && p50 < 0) p50 = HIST_US;
    if (measured_total && p99 < 0) p99 = HIST_US;
    int starved = 0;
    for (int i = 0; i < N; i++)
        if (cs[i].measured == 0) starved++;
    printf("{\"connections\": %d, \"connected\": %d, \"pipeline\": %d, \"seconds\": %.4f, "
           "\"answers\": %llu, \"rps\": %.1f, \"errors\": %llu, \"broken\": %d, "
           "\"p50_us\": %ld, \"p99_us\": %ld, \"max_us\": %.0f, \"over_200ms\": %llu, "
           "\"starved\": %d, \"cpu_share\": %.3f, \"idle_open\": %d, \"idle_failed\": %d}\n",
           N, connected, P, wall, (unsigned long long)measured_total,
           wall > 0 ? (double)measured_total / wall : 0.0, (unsigned long long)errors_, broken,
           p50, p99, max_latency * 1e6, (unsigned long long)overflow, starved,
           wall > 0 ? (cpu1 - cpu0) / wall : 0.0, idle_open, idle_failed);
    return 0;
}
