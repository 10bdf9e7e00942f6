; A boot sector that says so on COM1 and then spins for ever, interrupts
; off: an HVM guest that wants every cycle (test/hvm/sched.test.ts).
bits 16
org 0x7c00
    cli
    xor ax, ax
    mov ds, ax
    mov dx, 0x3f8
    mov si, msg
.next:
    lodsb
    test al, al
    jz .spin
    out dx, al
    jmp .next
.spin:
    inc eax
    jmp .spin
msg: db "spinning", 13, 10, 0
    times 510 - ($ - $$) db 0
    dw 0xaa55
