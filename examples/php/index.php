<?php
// fpmd's php pool: PHP in-process, through fpmd-php.so (the fpm-fcgi SAPI).
header('Content-Type: text/plain; charset=UTF-8');
printf("Hello from %s (PHP %s), worker %d\n", php_sapi_name(), PHP_VERSION, getmypid());
printf("opcache: %s\n", function_exists('opcache_get_status') && (opcache_get_status(false)['opcache_enabled'] ?? false) ? 'on' : 'off');
$s = fpm_get_status();
printf("pool %s: %d workers, %d accepted connections\n", $s['pool'], $s['total-processes'], $s['accepted-conn']);
