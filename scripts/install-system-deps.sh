#!/bin/sh
# Install the system daemons the lab runs, when they are missing and we may.
# Each entry: the binary the lab looks for, then the Debian package that provides it.
set -u
PACKAGES="memcached:memcached dig:bind9-dnsutils vsftpd:vsftpd lftp:lftp curl:curl swaks:swaks ssh:openssh-client sshd:openssh-server nginx:nginx wrk:wrk ip:iproute2 nft:nftables sysctl:procps dnsmasq:dnsmasq-base chromium:chromium certutil:libnss3-tools"
missing=""
for entry in $PACKAGES; do
    bin=${entry%%:*}; pkg=${entry#*:}
    command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/bin/$bin" ] || [ -x "/usr/sbin/$bin" ] \
        || missing="$missing $pkg"
done
# Dovecot's POP3 and IMAP servers (chapters 14-15: independent servers for our clients'
# tests) are not on PATH: look for their programs
[ -x /usr/lib/dovecot/pop3 ] || missing="$missing dovecot-pop3d"
[ -x /usr/lib/dovecot/imap ] || missing="$missing dovecot-imapd"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "wirelab: missing system packages:$missing (install them with: sudo apt-get install$missing)" >&2
    exit 0
fi
echo "wirelab: installing system packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1 \
    || echo "wirelab: apt-get could not install:$missing; the lab will report it" >&2
# The Debian package starts a system-wide memcached on 11211; the lab runs its own.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now memcached >/dev/null 2>&1 || true; fi
if [ -x /etc/init.d/memcached ]; then /etc/init.d/memcached stop >/dev/null 2>&1 || true; fi
# Without an init system the package may still have started its daemon (user memcache); stop
# only that one, never a memcached of someone else.
pkill -x -u memcache memcached >/dev/null 2>&1 || true
# vsftpd (chapter 17's independent server in tests) likewise starts a system service on port
# 21; the tests run their own from a config they write. Stop only the package's daemon.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now vsftpd >/dev/null 2>&1 || true; fi
if [ -x /etc/init.d/vsftpd ]; then /etc/init.d/vsftpd stop >/dev/null 2>&1 || true; fi
# openssh-server (chapter 16's independent sshd in tests) starts the system sshd on port 22;
# the tests run their own on a free port. Stop only the package's service.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now ssh >/dev/null 2>&1 || true; fi
if [ -x /etc/init.d/ssh ]; then /etc/init.d/ssh stop >/dev/null 2>&1 || true; fi
# nginx (chapter 10's reverse proxy, `http serve --behind-nginx`) starts the system nginx on
# port 80; wirelab runs its own from a config it writes. Stop only the package's daemon (the
# one named by the package's pid file).
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
if [ -x /etc/init.d/nginx ]; then /etc/init.d/nginx stop >/dev/null 2>&1 || true; fi
if [ -s /run/nginx.pid ] && command -v nginx >/dev/null 2>&1; then nginx -s quit >/dev/null 2>&1 || true; fi
# dnsmasq (the playground's `up --real` DNS on backbone) comes from dnsmasq-base, which
# installs the program only: unlike the dnsmasq package it starts no system service on port
# 53, so there is nothing of ours to stop (and a dnsmasq someone runs is not ours to stop).
# dovecot (chapters 14-15's independent POP3 and IMAP servers in tests) starts the system
# service on ports 110/143/993/995; the tests run their own from a config they write.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now dovecot >/dev/null 2>&1 || true; fi
if [ -x /etc/init.d/dovecot ]; then /etc/init.d/dovecot stop >/dev/null 2>&1 || true; fi
exit 0
