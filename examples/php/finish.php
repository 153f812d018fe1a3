<?php
// The client gets its answer now; the script goes on (php-fpm's function).
echo "answered; the rest runs after the response\n";
fastcgi_finish_request();
sleep(1);
error_log('finish.php: ran on after the response');
