<?php
// opcache sharing, asked of a freshly started worker (bench/run.sh php-*):
// is the opcache on, and did this worker find the scripts its predecessors
// compiled (shared memory) or an empty cache of its own?
$s = function_exists('opcache_get_status') ? opcache_get_status(true) : false;
$d = __DIR__;
$cached = function ($f) use ($s, $d) {
    return $s && isset($s['scripts']["$d/$f"]) ? $s['scripts']["$d/$f"]['hits'] : -1;
};
echo json_encode([
    'opcache' => $s ? $s['opcache_enabled'] : false,
    'sapi' => php_sapi_name(),
    'pid' => getmypid(),
    'ini' => php_ini_loaded_file(),
    'cached_scripts' => $s ? $s['opcache_statistics']['num_cached_scripts'] : 0,
    'hits' => $s ? $s['opcache_statistics']['hits'] : 0,
    'misses' => $s ? $s['opcache_statistics']['misses'] : 0,
    'hit_rate' => $s ? $s['opcache_statistics']['opcache_hit_rate'] : 0,
    'hello_hits' => $cached('hello.php'),
    'table_hits' => $cached('table.php'),
]), "\n";
