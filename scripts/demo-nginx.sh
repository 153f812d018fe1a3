#!/bin/sh
# Puts Debian's nginx on 127.0.0.1:8080 in front of the `make run` demo pools.
# Runs in the foreground with its own config in a scratch directory.
set -eu
prefix=/tmp/fpmd-demo
port=${FPMD_DEMO_HTTP_PORT:-8080}
conf="$prefix/nginx.conf"
mkdir -p "$prefix/nginx"
cat > "$conf" <<CONF
daemon off;
worker_processes 1;
pid $prefix/nginx/nginx.pid;
error_log stderr notice;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $prefix/nginx/body;
    fastcgi_temp_path $prefix/nginx/fcgi;
    proxy_temp_path $prefix/nginx/proxy;
    uwsgi_temp_path $prefix/nginx/uwsgi;
    scgi_temp_path $prefix/nginx/scgi;
    server {
        listen 127.0.0.1:$port;
        root $prefix/www;
        location = /ping   { include /etc/nginx/fastcgi_params; fastcgi_pass unix:/tmp/fpmd-demo-cgi.sock; }
        location = /status { include /etc/nginx/fastcgi_params; fastcgi_pass unix:/tmp/fpmd-demo-cgi.sock; }
        # the php pool runs .php files; try_files: a missing script is nginx's 404
        location ~ \.php\$ {
            try_files \$uri =404;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_pass unix:/tmp/fpmd-demo-php.sock;
        }
        location /cgi-bin/ {
            fastcgi_buffering off;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_pass unix:/tmp/fpmd-demo-cgi.sock;
        }
    }
}
CONF
echo "nginx on http://127.0.0.1:$port/ (try: curl http://127.0.0.1:$port/cgi-bin/hello.sh" \
	"and curl http://127.0.0.1:$port/php/index.php)"
exec nginx -c "$conf" -p "$prefix/nginx"
