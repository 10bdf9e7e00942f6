; The ioreq round trip, timed from inside an HVM guest (bench/hvm.ts).
; SeaBIOS boots this sector from the first disk. It reads COM1's scratch
; register (0x3FF), a port qemu-dm's UART claims and answers with no work,
; so each `in` is one ioreq to the device model and back.
;
; Rounds are driven by the host: the guest says "R" once, then for each byte
; it receives on COM1 (IRQ 4, waited for in HLT, so the vCPU and qemu-dm are
; idle between rounds while the host measures its baseline) it runs
;   WARM untimed reads (v86's JIT compiles the loops),
;   N reads, each between two rdtsc, into a histogram of BUCKET_SHIFT ns
;     buckets (v86's TSC counts nanoseconds of the host's clock),
;   N reads back to back, timed as a whole (the rate),
; and reports on COM1:
;   H <bucket> <count>         each non-empty bucket (hex)
;   T <timed> <rate>           TSC ticks of the timed loop and of the rate
;                              loop (hex), then waits for the next byte.
bits 16
org 0x7c00

%ifndef N
%define N 20000
%endif
%ifndef WARM
%define WARM 2000
%endif
%define BUCKET_SHIFT 5
%define BUCKETS 0x8000          ; 32 ns buckets up to ~1 ms (the last holds the rest)
%define PORT 0x3ff              ; COM1 SCR
%define COM1 0x3f8
%define HIST 0x1000             ; segment of the histogram (64 KiB at 0x10000)

start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7c00
    mov word [0x0c * 4], rx     ; IRQ 4 is vector 0x0c (SeaBIOS's PIC base 8)
    mov word [0x0c * 4 + 2], 0
    mov dx, COM1 + 1            ; IER: received data available
    mov al, 1
    out dx, al
    mov dx, COM1 + 4            ; MCR: DTR, RTS, OUT2 (the PC's IRQ gate)
    mov al, 0x0b
    out dx, al
    in al, 0x21                 ; unmask IRQ 4 on the master PIC
    and al, 0xef
    out 0x21, al
    mov al, 'R'
    call putc
    call crlf

round:
    mov byte [go], 0
.wait:
    sti
    hlt
    cli
    cmp byte [go], 0
    je .wait

    mov ax, HIST
    mov es, ax
    xor di, di
    xor ax, ax
    mov cx, BUCKETS
    rep stosw

    mov dx, PORT
    mov cx, WARM
.warm:
    in al, dx
    loop .warm

    rdtsc
    mov [t_timed], eax
    mov bp, N
.timed:
    rdtsc                       ; (rdtsc sets EDX: the port goes in after it)
    mov esi, eax
    mov dx, PORT
    in al, dx
    rdtsc
    sub eax, esi
    shr eax, BUCKET_SHIFT
    cmp eax, BUCKETS - 1
    jbe .in_range
    mov eax, BUCKETS - 1
.in_range:
    mov bx, ax
    shl bx, 1
    inc word [es:bx]
    dec bp
    jnz .timed
    rdtsc
    sub eax, [t_timed]
    mov [t_timed], eax

    rdtsc
    mov [t_rate], eax
    mov dx, PORT
    mov cx, N
.rate:
    in al, dx
    loop .rate
    rdtsc
    sub eax, [t_rate]
    mov [t_rate], eax

    xor bx, bx
.dump:
    mov ax, [es:bx]
    test ax, ax
    jz .next
    push ax
    mov al, 'H'
    call putc
    mov ax, bx
    shr ax, 1
    call hex16
    pop ax
    call hex16
    call crlf
.next:
    add bx, 2
    jnz .dump

    mov al, 'T'
    call putc
    mov eax, [t_timed]
    call hex32
    mov eax, [t_rate]
    call hex32
    call crlf
    jmp round

; ' ' then AX as 4 hex digits
hex16:
    push ecx
    mov cx, 4
    shl eax, 16
    jmp hex
; ' ' then EAX as 8 hex digits
hex32:
    push ecx
    mov cx, 8
hex:
    push eax
    mov al, ' '
    call putc
    pop eax
.digit:
    rol eax, 4
    push eax
    and al, 0x0f
    add al, '0'
    cmp al, '9'
    jbe .put
    add al, 'a' - '9' - 1
.put:
    call putc
    pop eax
    loop .digit
    pop ecx
    ret

crlf:
    mov al, 13
    call putc
    mov al, 10
putc:
    push dx
    mov dx, COM1
    out dx, al
    pop dx
    ret

rx:                             ; IRQ 4: take the byte, start a round
    push ax
    push dx
    mov dx, COM1
    in al, dx
    mov byte [go], 1
    mov al, 0x20                ; EOI
    out 0x20, al
    pop dx
    pop ax
    iret

go:      db 0
t_timed: dd 0
t_rate:  dd 0

    times 510 - ($ - $$) db 0
    dw 0xaa55
