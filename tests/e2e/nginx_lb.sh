# Sourced by the scale-out tests (test_scale_out.sh, test_client_scale_out.sh): nginx on a
# loopback port balancing seglossd replicas, as docker/compose.yaml puts it in front of them.
#
#   nginx_lb_start WORK PORT FAIL_TIMEOUT ACCESS_LOG REPLICA_PORT...
#
# writes WORK/nginx.conf and starts $NGINX as a background job, its pid in nginx_pid (the caller
# stops it). ACCESS_LOG is a file or "off"; FAIL_TIMEOUT is how long a replica that refused a
# connection is left out.
nginx_lb_start() {
    local work=$1 port=$2 fail_timeout=$3 access_log=$4 upstreams="" p
    shift 4
    for p in "$@"; do
        upstreams+="        server 127.0.0.1:$p max_fails=1 fail_timeout=$fail_timeout;"$'\n'
    done
    # nginx's workers run as nobody when it starts as root: they may pass through $work only
    chmod 711 "$work"
    mkdir -p "$work/nginx_tmp" && chmod 1777 "$work/nginx_tmp"
    cat >"$work/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx_error.log warn;
events { worker_connections 512; }
http {
    access_log $access_log;
    client_body_temp_path $work/nginx_tmp/body;
    proxy_temp_path $work/nginx_tmp/proxy;
    fastcgi_temp_path $work/nginx_tmp/fastcgi;
    uwsgi_temp_path $work/nginx_tmp/uwsgi;
    scgi_temp_path $work/nginx_tmp/scgi;
    client_max_body_size 256m;
    upstream segloss {
$upstreams    }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://segloss;
            # Another replica is tried only when the request could not be sent (connection
            # refused: the replica is down). Not non_idempotent: a POST that reached a replica
            # may be recorded already, and sending it again would count its batch twice.
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 2;
            proxy_connect_timeout 2s;
            proxy_read_timeout 60s;
        }
    }
}
EOF
    "$NGINX" -e "$work/nginx_error.log" -p "$work" -c "$work/nginx.conf" >"$work/nginx.out" 2>&1 &
    nginx_pid=$!
}
