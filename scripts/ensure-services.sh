#!/usr/bin/env bash
# Makes sure PostgreSQL (5432) and RabbitMQ (5672) answer before the tests run:
# starts them when they are installed on this machine but stopped, and gives the tests and
# the bench a RabbitMQ vhost of their own (never the default vhost `/`, where a deployment
# may run). Quiet when all is in place.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() {
  local name=$1 port=$2 seconds=$3
  for _ in $(seq 1 "$seconds"); do
    port_open "$port" && return 0
    sleep 1
  done
  echo "ensure-services: $name did not open port $port within ${seconds}s" >&2
  return 1
}

if ! port_open 5432; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "ensure-services: starting PostgreSQL"
    for version in $(ls /etc/postgresql); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
    wait_for_port PostgreSQL 5432 60
  else
    echo "ensure-services: PostgreSQL is not listening on 5432 and is not installed here; set TEST_POSTGRES_URL" >&2
  fi
fi

if ! port_open 5672; then
  if command -v rabbitmq-server >/dev/null 2>&1; then
    echo "ensure-services: starting RabbitMQ"
    rabbitmq-server -detached
    wait_for_port RabbitMQ 5672 120
    rabbitmqctl await_startup >/dev/null 2>&1 || true
  else
    echo "ensure-services: RabbitMQ is not listening on 5672 and is not installed here; set TEST_AMQP_URL" >&2
  fi
fi

# The tests' vhost, and a neighbour standing in for a deployment that the tests must leave
# alone (test/support/environment.ts names both). Skipped when TEST_AMQP_URL points
# elsewhere: whoever set it provides the vhost.
if [ -z "${TEST_AMQP_URL:-}" ] && command -v rabbitmqctl >/dev/null 2>&1; then
  existing=$(rabbitmqctl -q list_vhosts 2>/dev/null || true)
  for vhost in defect-control-test defect-control-test-neighbour; do
    if ! grep -qx "$vhost" <<<"$existing"; then
      rabbitmqctl -q add_vhost "$vhost" >/dev/null
      rabbitmqctl -q set_permissions -p "$vhost" guest '.*' '.*' '.*' >/dev/null
    fi
  done
fi
