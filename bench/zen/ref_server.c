/* Reference Zen server for the chapter 7 benchmark: one thread, epoll, non-blocking sockets.
 *
 * The yardstick our Python architectures are measured against, in the same run, on the same
 * machine. It speaks exactly the protocol of wirelab.zen._core: questions end in '?', answers
 * end in '.', any number of questions per read (pipelining), a question of max_question bytes
 * or more gets "Error: question too long." and a close, unanswered output is buffered.
 *
 * usage: ref_server [PORT]   (0 or nothing: an ephemeral port). Prints "PORT <n>" when ready.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FD 65536
#define MAX_QUESTION 1024
#define RECV_SIZE 65536

struct conn {
    char in[MAX_QUESTION];
    size_t in_len;
    char *out;
    size_t out_len, out_cap;
    int closing;
};

static struct conn *conns[MAX_FD];
static int ep;

static const char *questions[] = {"Beautiful is better than", "Explicit is better than",
                                  "Simple is better than"};
static const char *answers[] = {"Ugly.", "Implicit.", "Complex."};
static const char unknown[] = "Error: unknown aphorism.";
static const char too_long[] = "Error: question too long.";

static void append(struct conn *c, const char *data, size_t n) {
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap * 2 : 4096;
        while (cap < c->out_len + n) cap *= 2;
        c->out = realloc(c->out, cap);
        if (!c->out) abort();
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, n);
    c->out_len += n;
}

static void answer(struct conn *c, const char *q, size_t n) {
    for (int i = 0; i < 3; i++) {
        size_t len = strlen(questions[i]);
        if (n == len && memcmp(q, questions[i], n) == 0) {
            append(c, answers[i], strlen(answers[i]));
            return;
        }
    }
    append(c, unknown, sizeof unknown - 1);
}

static void drop(int fd) {
    struct conn *c = conns[fd];
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    if (c) {
        free(c->out);
        free(c);
        conns[fd] = NULL;
    }
}

/* Send what is queued; returns -1 if the connection was dropped. */
static int flush(int fd, struct conn *c) {
    while (c->out_len) {
        ssize_t n = send(fd, c->out, c->out_len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            drop(fd);
            return -1;
        }
        memmove(c->out, c->out + n, c->out_len - (size_t)n);
        c->out_len -= (size_t)n;
    }
    struct epoll_event ev = {.events = c->out_len ? EPOLLOUT : EPOLLIN, .data.fd = fd};
    if (!c->out_len && c->closing) {
        drop(fd);
        return -1;
    }
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
    return 0;
}

static void on_read(int fd, struct conn *c) {
    static char buf[RECV_SIZE];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        drop(fd);
        return;
    }
    if (n < 0) return;
    char *p = buf, *end = buf + n;
    while (p < end && !c->closing) {
        char *mark = memchr(p, '?', (size_t)(end - p));
        size_t seg = mark ? (size_t)(mark - p) : (size_t)(end - p);
        if (c->in_len + seg >= MAX_QUESTION) {
            append(c, too_long, sizeof too_long - 1);
            c->closing = 1;
            break;
        }
        if (!mark) {
            memcpy(c->in + c->in_len, p, seg);
            c->in_len += seg;
            break;
        }
        if (c->in_len) {
            memcpy(c->in + c->in_len, p, seg);
            answer(c, c->in, c->in_len + seg);
            c->in_len = 0;
        } else {
            answer(c, p, seg);
        }
        p = mark + 1;
    }
    if (c->out_len) flush(fd, c);
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    signal(SIGPIPE, SIG_IGN);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&addr, sizeof addr) || listen(ls, 1024)) {
        perror("ref_server: bind/listen");
        return 1;
    }
    socklen_t alen = sizeof addr;
    getsockname(ls, (struct sockaddr *)&addr, &alen);
    printf("PORT %d\n", ntohs(addr.sin_port));
    fflush(stdout);
    ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    struct epoll_event events[512];
    for (;;) {
        int k = epoll_wait(ep, events, 512, -1);
        if (k < 0 && errno == EINTR) continue;
        for (int i = 0; i < k; i++) {
            int fd = events[i].data.fd;
            if (fd == ls) {
                for (;;) {
                    int cfd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
                    if (cfd < 0) break; /* EAGAIN, or EMFILE: retried on the next wake-up */
                    if (cfd >= MAX_FD) { close(cfd); continue; }
                    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conns[cfd] = calloc(1, sizeof(struct conn));
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = cfd};
                    epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev);
                }
                continue;
            }
            struct conn *c = conns[fd];
            if (!c) continue;
            if (events[i].events & (EPOLLERR | EPOLLHUP) && !(events[i].events & EPOLLIN)) {
                drop(fd);
                continue;
            }
            if (events[i].events & EPOLLOUT) {
                if (flush(fd, c) < 0) continue;
            }
            if (events[i].events & EPOLLIN && !c->closing) on_read(fd, c);
        }
    }
}
